/* cmd.c - flag tables shared by the verbs: matching and --help rendering. */
#include "cmd/cmd.h"

#include <string.h>

void cmd_print_flags(FILE *f, const struct cmd_flag *flags)
{
	for (const struct cmd_flag *fl = flags; fl->name; fl++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s", fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "");
		fprintf(f, "  %-24s %s\n", left, fl->help);
	}
}

const struct cmd_flag *cmd_match(const struct cmd_flag *flags, int argc, char **argv, int *i,
                                 const char **val, const char *verb)
{
	const char *a = argv[*i];
	const char *eq = strchr(a, '=');
	size_t n = eq ? (size_t)(eq - a) : strlen(a);
	for (const struct cmd_flag *fl = flags; fl->name; fl++) {
		if (strlen(fl->name) != n || strncmp(fl->name, a, n))
			continue;
		*val = NULL;
		if (!fl->arg) {
			if (eq) {
				fprintf(stderr, "loopkit %s: %s takes no value\n", verb, fl->name);
				return NULL;
			}
			return fl;
		}
		if (eq) {
			*val = eq + 1;
		} else if (*i + 1 < argc) {
			*val = argv[++*i];
		} else {
			fprintf(stderr, "loopkit %s: %s needs a value (%s)\n", verb, fl->name, fl->arg);
			return NULL;
		}
		return fl;
	}
	fprintf(stderr, "loopkit %s: unknown option %s\n", verb, a);
	return NULL;
}
