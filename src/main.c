/* main.c - loopkit's entry: the verbs, --version, and the generated man pages and completions. */
#include <malloc.h>
#include <stdio.h>

#include "cmd/cmd.h"

static const struct cmd_verb *const verbs[] = {
        &cmd_serve, &cmd_ports, &cmd_who,     &cmd_doctor, &cmd_ping,  &cmd_port, &cmd_bench,
        &cmd_scan,  &cmd_audit, &cmd_isolate, &cmd_proxy,  &cmd_watch, NULL,
};

struct loopkit_args {
	int version;
	const char *man;      /* --man NAME: print loopkit(1) or loopkit-NAME(1) */
	const char *markdown; /* --markdown PATH: print the flag table of docs/VERB.md */
	int completion;       /* --completion SHELL: index in shells, -1 when not asked */
	int verbs;            /* --verbs: the verbs' names, one a line (for make) */
};
#define AT(f) CMD_AT(struct loopkit_args, f)

static const char *const shells[] = {"bash", "zsh", "fish", NULL};
static const enum cmd_format shell_formats[] = {CMD_BASH, CMD_ZSH, CMD_FISH};

static const struct cmd_flag loopkit_flags[] = {
        {"version", 'V', NULL, NULL, "print the version", CMD_SWITCH, AT(version)},
        {"man", 0, "NAME", NULL, "print the man page of loopkit or a verb", CMD_STR, AT(man),
         .attr = CMD_HIDDEN},
        {"markdown", 0, "PATH", NULL, "print a verb's flag table for docs/VERB.md", CMD_STR, AT(markdown),
         .attr = CMD_HIDDEN},
        {"completion", 0, "SHELL", NULL, "print a completion script", CMD_ENUM, AT(completion),
         .choices = shells, .attr = CMD_HIDDEN},
        {"verbs", 0, NULL, NULL, "list the verbs, one a line", CMD_SWITCH, AT(verbs), .attr = CMD_HIDDEN},
        {0},
};

static void loopkit_init(void *p)
{
	((struct loopkit_args *)p)->completion = -1;
}

static int loopkit_run(void *p);

static const struct cmd_verb loopkit = {
        .name = "loopkit",
        .summary = "the loopback workbench",
        .about = "The loopback workbench for Linux: one binary for everything you do on 127.0.0.1.\n"
                 "Its home is 127.0.0.1:" CMD_HOME_PORT ", outside the kernel's ephemeral port range.\n",
        .flags = loopkit_flags,
        .size = sizeof(struct loopkit_args),
        .init = loopkit_init,
        .run = loopkit_run,
        .subs = verbs,
        .sub_noun = "verb",
};

static int render(enum cmd_format fmt, const char *path)
{
	if (cmd_render(stdout, &loopkit, fmt, path) < 0) {
		fprintf(stderr, "loopkit: no verb '%s'\n", path);
		return 2;
	}
	return fflush(stdout) ? 1 : 0;
}

static int loopkit_run(void *p)
{
	const struct loopkit_args *a = p;
	if (a->version) {
		printf("loopkit %s\n", LOOPKIT_VERSION);
		return 0;
	}
	if (a->man)
		return render(CMD_MAN, a->man);
	if (a->markdown)
		return render(CMD_MARKDOWN, a->markdown);
	for (const struct cmd_verb *const *v = verbs; a->verbs && *v; v++)
		printf("%s\n", (*v)->name);
	if (a->verbs)
		return fflush(stdout) ? 1 : 0;
	if (a->completion >= 0)
		return render(shell_formats[a->completion], "");
	cmd_render(stderr, &loopkit, CMD_HELP, "");
	return 2;
}

int main(int argc, char **argv)
{
	/* Fixed malloc thresholds for every long-running verb (serve, proxy, watch): by
	 * default glibc raises them after a large block is freed (up to 32 MiB to mmap,
	 * twice that to trim), so once a big listing or a burst of buffers came and went,
	 * the same sizes stay in the thread arenas for good: their top is below the raised
	 * trim threshold and malloc_trim() does not trim an arena's top. Fixed at glibc's
	 * own starting values, a block of 128 KiB or more is its own mapping, given back
	 * when freed, and an arena's free top is returned past 128 KiB. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	return cmd_main(&loopkit, argc, argv);
}
