/* cmd.h - verbs and their flag tables: one table per verb gives parsing, defaults, --help,
 * the man page, shell completions and the flag table in docs/VERB.md (see docs/cli.md). */
#ifndef LOOPKIT_CMD_H
#define LOOPKIT_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/net.h"
#include "core/strparse.h"

/* What a flag's value is, and what it is stored as (at `off` in the verb's options). */
enum cmd_kind {
	CMD_SWITCH, /* no value; an int (any unsigned width) becomes 1 */
	CMD_UINT,   /* whole number in [min, max] (max 0: the field's largest) -> unsigned integer */
	CMD_SIZE,   /* bytes, 64K, 10M, 2G in [min, max] -> unsigned integer */
	CMD_SECS,   /* duration 1.5, 500ms, 2m in [min, max] milliseconds -> double seconds */
	CMD_MS,     /* duration as above -> unsigned integer of milliseconds */
	CMD_STR,    /* text -> const char * (into argv or the table; never freed) */
	CMD_ENUM,   /* one of choices -> its index, an int */
	CMD_RANGE,  /* "A-B" or "A", each in [min, max] -> struct strparse_range */
	CMD_LIST,   /* text, repeatable -> struct cmd_list */
	CMD_CALL,   /* set(opts, value, err, errlen) stores it; returns 0 or -1 with err */
};

/* Row attributes. */
#define CMD_ARG    1u  /* a positional argument (name is its placeholder: "DIR"), in table order */
#define CMD_NEED   2u  /* with CMD_ARG: must be given */
#define CMD_HIDDEN 4u  /* parsed, but in no help, man page, completion or doc */
#define CMD_SECRET 16u /* the value is never echoed (a bad one is refused without it) */
#define CMD_REST                                                              \
	8u /* with CMD_ARG: this argument and all after it, options included, \
	      verbatim (a command to run); the field is a struct cmd_rest */

#define CMD_LIST_MAX 64 /* most values one repeatable flag takes */
struct cmd_list {
	size_t n;
	const char *v[CMD_LIST_MAX];
};

/* What a CMD_REST row gets: the tail of argv (NULL-terminated), or argc 0. */
struct cmd_rest {
	int argc;
	char **argv;
};

/* One flag or positional argument. Rows end with a zeroed row. The default is text,
 * parsed like user input before argv is, so a default is written exactly once. */
struct cmd_flag {
	const char *name; /* long name without "--" ("port"), or the placeholder of a CMD_ARG */
	char letter;      /* short form ('p' for -p), or 0; one meaning across all verbs */
	const char *arg;  /* value placeholder ("N", "SECS", "FILE"); NULL for a switch or enum */
	const char *def;  /* default as a user would type it, or NULL */
	const char *help; /* one line, lower case, no period; bounds and default are added */
	enum cmd_kind kind;
	size_t off, size;           /* where the value goes in the options struct: use CMD_AT */
	uint64_t min, max;          /* bounds (durations in milliseconds); max 0: no bound beyond the type */
	const char *const *choices; /* CMD_ENUM: names, NULL-terminated */
	int (*set)(void *opts, const char *val, char *err, size_t errlen); /* CMD_CALL */
	unsigned attr;                                                     /* CMD_ARG, CMD_NEED, CMD_HIDDEN */
};
#define CMD_AT(type, field) .off = offsetof(type, field), .size = sizeof(((type *)0)->field)

/* A habit from another tool and what to say when it shows up: an unknown option ("-t")
 * or, with CMD_HINT_NUMBER, a bare number where no argument is expected. "{}" in text
 * becomes the argument. */
#define CMD_HINT_NUMBER "#"
struct cmd_hint {
	const char *arg;
	const char *text;
};

/* A verb (or a subcommand of one: bench tcp). */
struct cmd_verb {
	const char *name;                   /* "serve"; a subcommand's own name ("tcp") */
	const char *summary;                /* one line: the parent's list, the man page's NAME */
	const char *about;                  /* what it does: --help and the man page's DESCRIPTION */
	const struct cmd_flag *flags;       /* options and arguments; NULL for none */
	size_t size;                        /* sizeof the options struct that run() gets */
	void (*init)(void *opts);           /* optional, before the defaults (a library's defaults) */
	int (*run)(void *opts);             /* the work; returns the exit status */
	void (*fini)(void *opts);           /* optional: frees what init and the flags allocated */
	const struct cmd_verb *const *subs; /* subcommands, NULL-terminated; or NULL */
	const char *sub_noun;               /* what a subcommand is called: "verb", "mode" */
	const struct cmd_hint *hints;       /* ends with a zeroed row; or NULL */
	const char *examples;               /* for the man page: "$ command\n  what it shows\n..." or NULL */
};

/* Runs argv (argv[0] is the program) against root and its subcommands: parses flags
 * into a fresh options struct (init, then defaults, then argv), answers -h/--help and
 * `help VERB`, and calls run. Usage errors print the cause and one usage line to
 * stderr. Returns the exit status: run's, 0 after help, 2 on a usage error. */
int cmd_main(const struct cmd_verb *root, int argc, char **argv);

enum cmd_format { CMD_HELP, CMD_MAN, CMD_MARKDOWN, CMD_BASH, CMD_ZSH, CMD_FISH };
/* Renders what root knows: CMD_HELP, CMD_MAN and CMD_MARKDOWN for the verb at path
 * ("" or "loopkit": root; "serve"; "bench tcp"; a man page covers subcommands too), a
 * completion script for the whole tree. Returns 0, or -1 when path names no verb. */
int cmd_render(FILE *f, const struct cmd_verb *root, enum cmd_format fmt, const char *path);

/* A numeric macro as a string literal, so a flag's default text comes from the
 * library's constant (one fact, one place). */
#define CMD_STR_OF_(x) #x
#define CMD_STR_OF(x)  CMD_STR_OF_(x)

/* loopkit's home port (docs: DESIGN.md), the default of every verb that takes a port. */
#define CMD_HOME_PORT CMD_STR_OF(NET_HOME_PORT)

/* ---- inside src/cmd: the text of flag rows, shared by --help (cmd.c) and the generated
 * man pages, docs tables and completions (cmdgen.c). Not for verbs. ---- */

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

extern const struct cmd_verb cmd_serve, cmd_bench, cmd_ports, cmd_who, cmd_port, cmd_ping, cmd_doctor;
extern const struct cmd_verb cmd_scan, cmd_audit, cmd_proxy;
extern const struct cmd_verb cmd_isolate;
extern const struct cmd_verb cmd_watch;

/* Prints "loopkit VERB: MSG" on stderr. The message quotes what the user gave (flags,
 * files): its control bytes are escaped (text_escape), so none can forge a line or
 * drive the terminal. */
void cmd_error(const char *verb, const char *msg);

#endif
