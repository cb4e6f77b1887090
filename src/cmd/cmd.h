/* cmd.h - the verbs' entry points and the shared flag-table helpers. */
#ifndef LOOPKIT_CMD_H
#define LOOPKIT_CMD_H

#include <stdio.h>

/* One flag of a verb: its --help line and docs/VERB.md agree with this table. */
struct cmd_flag {
	const char *name;  /* "--port" */
	const char *arg;   /* "N", or NULL for a switch */
	const char *help;  /* one line */
};

void cmd_print_flags(FILE *f, const struct cmd_flag *flags);
/* Finds argv[*i] in flags, accepting "--name value" and "--name=value". Returns the
 * flag, with *val set for flags that take a value (and *i advanced), or NULL after
 * printing a usage error. */
const struct cmd_flag *cmd_match(const struct cmd_flag *flags, int argc, char **argv, int *i,
                                 const char **val, const char *verb);

int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ports(int argc, char **argv);
int cmd_who(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

#endif
