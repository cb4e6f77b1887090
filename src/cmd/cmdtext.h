/* cmdtext.h - inside src/cmd: the text of flag rows, shared by --help (cmd.c) and the
 * generated man pages, docs tables and completions (cmdgen.c). Not for verbs. */
#ifndef LOOPKIT_CMD_CMDTEXT_H
#define LOOPKIT_CMD_CMDTEXT_H

#include "cmd/cmd.h"

extern const struct cmd_flag cmd_help_row; /* -h, --help: every verb has it */

/* Is the row shown (not hidden, not the end)? */
int cmd_visible(const struct cmd_flag *f);
/* The largest value f accepts (its max, or what its field holds). */
uint64_t cmd_flag_max(const struct cmd_flag *f);
/* The choices of an enum joined by sep. Returns out. */
char *cmd_choices(const struct cmd_flag *f, const char *sep, char *out, size_t len);
/* The value placeholder: arg, or an enum's choices as "a|b"; "" for a switch. */
char *cmd_flag_arg(const struct cmd_flag *f, char *out, size_t len);
/* "-p, --port N", "    --host ADDR" or "DIR" (with_arg 0: without the placeholder). */
char *cmd_flag_left(const struct cmd_flag *f, int with_arg, char *out, size_t len);
/* Its bounds as text ("1-256", "1ms-1h", "1-64M"), "" when it has none. */
char *cmd_flag_bounds(const struct cmd_flag *f, char *out, size_t len);
/* help, then "(BOUNDS; default DEF)" as far as they exist (with_default 0: no default). */
char *cmd_flag_meaning(const struct cmd_flag *f, int with_default, char *out, size_t len);
/* "VERB [OPTIONS]", "[DIR] [OPTIONS]", "PORT [OPTIONS]": what follows the verb's name. */
char *cmd_synopsis(const struct cmd_verb *v, char *out, size_t len);
/* The candidate closest to word (typo distance), or NULL when none is close. */
const char *cmd_closest(const char *word, const char *const *cands, size_t n);
/* The verb at path under root ("", "serve", "bench tcp"), its full name in full. */
const struct cmd_verb *cmd_find(const struct cmd_verb *root, const char *path, char *full, size_t len);
/* The --help text of v. */
int cmd_render_help(FILE *f, const struct cmd_verb *v, const char *path);

#endif
