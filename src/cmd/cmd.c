/* cmd.c - flag tables at work: defaults, parsing argv, subcommands, --help, usage errors. */
#include "cmd/cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

const struct cmd_flag cmd_help_row = {"help", 'h', NULL, NULL, "this text", CMD_SWITCH, .size = 0};

/* A verb being run: which one, and its full name ("loopkit bench tcp") for messages. */
struct run {
	const struct cmd_verb *v;
	char path[96];
};

/* ---- storing values ---- */

static uint64_t width_max(size_t size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

uint64_t cmd_flag_max(const struct cmd_flag *f)
{
	uint64_t w = width_max(f->size);
	if (f->kind == CMD_SECS || f->kind == CMD_RANGE)
		w = UINT64_MAX / STRPARSE_NS_PER_MS;
	else if (f->kind == CMD_MS && w > UINT64_MAX / STRPARSE_NS_PER_MS)
		w = UINT64_MAX / STRPARSE_NS_PER_MS;
	return f->max && f->max < w ? f->max : w;
}

static void put_uint(void *dst, size_t size, uint64_t v)
{
	uint8_t u8 = (uint8_t)v;
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;
	switch (size) {
	case 1: memcpy(dst, &u8, 1); break;
	case 2: memcpy(dst, &u16, 2); break;
	case 4: memcpy(dst, &u32, 4); break;
	default: memcpy(dst, &v, 8); break;
	}
}

/* Parses val for row f into opts. Returns 0, or -1 with the reason in err. */
static int set_value(const struct cmd_flag *f, void *opts, const char *val, char *err, size_t errlen)
{
	char *dst = (char *)opts + f->off;
	uint64_t u, max = cmd_flag_max(f);
	double d;
	struct strparse_range r;
	switch (f->kind) {
	case CMD_SWITCH: put_uint(dst, f->size, 1); return 0;
	case CMD_UINT:
		if (strparse_uint(val, f->min, max, &u, err, errlen) < 0)
			return -1;
		put_uint(dst, f->size, u);
		return 0;
	case CMD_SIZE:
		if (strparse_size(val, f->min, max, &u, err, errlen) < 0)
			return -1;
		put_uint(dst, f->size, u);
		return 0;
	case CMD_SECS:
	case CMD_MS:
		if (strparse_duration(val, f->min * STRPARSE_NS_PER_MS, max * STRPARSE_NS_PER_MS, &u, err,
		                      errlen) < 0)
			return -1;
		if (f->kind == CMD_MS) {
			put_uint(dst, f->size, (u + STRPARSE_NS_PER_MS / 2) / STRPARSE_NS_PER_MS);
		} else {
			d = (double)u / (double)STRPARSE_NS_PER_SEC;
			memcpy(dst, &d, sizeof d);
		}
		return 0;
	case CMD_STR: memcpy(dst, &val, sizeof val); return 0;
	case CMD_ENUM:
		for (size_t i = 0; f->choices[i]; i++)
			if (!strcmp(val, f->choices[i])) {
				put_uint(dst, f->size, i);
				return 0;
			}
		snprintf(err, errlen, "not one of %s", cmd_choices(f, "|", (char[128]){0}, 128));
		return -1;
	case CMD_RANGE:
		if (strparse_range(val, f->min, max, &r, err, errlen) < 0)
			return -1;
		memcpy(dst, &r, sizeof r);
		return 0;
	case CMD_LIST: {
		struct cmd_list *l = (struct cmd_list *)(void *)dst;
		if (l->n == CMD_LIST_MAX) {
			snprintf(err, errlen, "given more than %d times", CMD_LIST_MAX);
			return -1;
		}
		l->v[l->n++] = val;
		return 0;
	}
	case CMD_CALL: return f->set(opts, val, err, errlen);
	}
	return -1;
}

/* ---- text shared by --help and the generated files ---- */

char *cmd_choices(const struct cmd_flag *f, const char *sep, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; f->choices && f->choices[i] && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? sep : "", f->choices[i]);
	return out;
}

char *cmd_flag_arg(const struct cmd_flag *f, char *out, size_t len)
{
	if (f->kind == CMD_ENUM && !f->arg)
		return cmd_choices(f, "|", out, len);
	snprintf(out, len, "%s", f->arg && f->kind != CMD_SWITCH ? f->arg : "");
	return out;
}

char *cmd_flag_left(const struct cmd_flag *f, int with_arg, char *out, size_t len)
{
	char arg[128];
	cmd_flag_arg(f, arg, sizeof arg);
	if (f->attr & CMD_ARG)
		snprintf(out, len, "%s", f->name);
	else if (f->letter)
		snprintf(out, len, "-%c, --%s%s%s", f->letter, f->name, *arg && with_arg ? " " : "",
		         with_arg ? arg : "");
	else
		snprintf(out, len, "    --%s%s%s", f->name, *arg && with_arg ? " " : "", with_arg ? arg : "");
	return out;
}

char *cmd_flag_bounds(const struct cmd_flag *f, char *out, size_t len)
{
	char a[40], b[40];
	out[0] = '\0';
	if (!f->max || (f->attr & CMD_ARG && f->kind == CMD_STR))
		return out;
	switch (f->kind) {
	case CMD_UINT:
	case CMD_RANGE:
		snprintf(out, len, "%llu-%llu", (unsigned long long)f->min, (unsigned long long)f->max);
		break;
	case CMD_SIZE:
		snprintf(out, len, "%s-%s", strparse_fmt_size(f->min, a, sizeof a),
		         strparse_fmt_size(f->max, b, sizeof b));
		break;
	case CMD_SECS:
	case CMD_MS:
		snprintf(out, len, "%s-%s", strparse_fmt_duration(f->min * STRPARSE_NS_PER_MS, a, sizeof a),
		         strparse_fmt_duration(f->max * STRPARSE_NS_PER_MS, b, sizeof b));
		break;
	default: break;
	}
	return out;
}

char *cmd_flag_meaning(const struct cmd_flag *f, int with_default, char *out, size_t len)
{
	char bounds[96];
	cmd_flag_bounds(f, bounds, sizeof bounds);
	int def = with_default && f->def;
	snprintf(out, len, "%s%s%s%s%s%s%s", f->help, *bounds || def ? " (" : "", bounds,
	         *bounds && def ? "; " : "", def ? "default " : "", def ? f->def : "",
	         *bounds || def ? ")" : "");
	return out;
}

int cmd_visible(const struct cmd_flag *f)
{
	return f->name && !(f->attr & CMD_HIDDEN);
}

char *cmd_synopsis(const struct cmd_verb *v, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	if (v->subs)
		o += (size_t)snprintf(out, len, "%s", v->sub_noun ? v->sub_noun : "VERB");
	for (char *p = out; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	for (const struct cmd_flag *f = v->flags; f && f->name && o < len; f++)
		if ((f->attr & CMD_ARG) && !(f->attr & CMD_REST) && cmd_visible(f))
			o += (size_t)snprintf(out + o, len - o, "%s%s%s%s", o ? " " : "",
			                      f->attr & CMD_NEED ? "" : "[", f->name,
			                      f->attr & CMD_NEED ? "" : "]");
	if (o < len)
		o += (size_t)snprintf(out + o, len - o, "%s[OPTIONS]", o ? " " : "");
	/* a command to run comes after the options: loopkit isolate [OPTIONS] [--] CMD [ARG...] */
	for (const struct cmd_flag *f = v->flags; f && f->name && o < len; f++)
		if ((f->attr & CMD_REST) && cmd_visible(f))
			o += (size_t)snprintf(out + o, len - o, " %s[--] %s [ARG...]%s",
			                      f->attr & CMD_NEED ? "" : "[", f->name,
			                      f->attr & CMD_NEED ? "" : "]");
	return out;
}

static void print_rows(FILE *f, const struct cmd_verb *v, int positional)
{
	char left[160], meaning[512];
	for (const struct cmd_flag *r = v->flags; r && r->name; r++)
		if (cmd_visible(r) && !(r->attr & CMD_ARG) == !positional) {
			cmd_flag_left(r, 1, left, sizeof left);
			fprintf(f, "  %-28s  %s\n", left, cmd_flag_meaning(r, 1, meaning, sizeof meaning));
		}
	if (!positional)
		fprintf(f, "  %-28s  %s\n", cmd_flag_left(&cmd_help_row, 1, left, sizeof left),
		        cmd_help_row.help);
}

/* The man page that documents path ("loopkit" -> "loopkit", "loopkit bench http" ->
 * "loopkit-bench"): make install puts it next to the binary, unlike the docs/ tree. */
static const char *man_name(const char *path, char *buf, size_t len)
{
	size_t root = strcspn(path, " ");
	size_t verb = path[root] ? strcspn(path + root + 1, " ") : 0;
	if (verb)
		snprintf(buf, len, "%.*s-%.*s", (int)root, path, (int)verb, path + root + 1);
	else
		snprintf(buf, len, "%.*s", (int)root, path);
	return buf;
}

static void print_help(FILE *f, const struct cmd_verb *v, const char *path)
{
	char syn[256], man[96];
	fprintf(f, "usage: %s %s\n\n%sSee %s(1).\n", path, cmd_synopsis(v, syn, sizeof syn),
	        v->about ? v->about : "", man_name(path, man, sizeof man));
	if (v->subs) {
		fprintf(f, "\n%ss:\n", v->sub_noun ? v->sub_noun : "verb");
		for (const struct cmd_verb *const *s = v->subs; *s; s++)
			fprintf(f, "  %-8s %s\n", (*s)->name, (*s)->summary);
	}
	int nargs = 0;
	for (const struct cmd_flag *r = v->flags; r && r->name; r++)
		nargs += (r->attr & CMD_ARG) && cmd_visible(r);
	if (nargs) {
		fprintf(f, "\narguments:\n");
		print_rows(f, v, 1);
	}
	fprintf(f, "\noptions:\n");
	print_rows(f, v, 0);
	if (v->subs) {
		char noun[32];
		cmd_synopsis(&(struct cmd_verb){.subs = v->subs, .sub_noun = v->sub_noun}, noun, sizeof noun);
		noun[strcspn(noun, " ")] = '\0';
		fprintf(f, "\n'%s help %s' or '%s %s --help' describes one.\n", path, noun, path, noun);
	}
	if (v->examples) { /* the man page's, each line indented */
		fprintf(f, "\nexamples:\n");
		for (const char *e = v->examples; *e;) {
			size_t n = strcspn(e, "\n");
			fprintf(f, "  %.*s\n", (int)n, e);
			e += n + (e[n] == '\n');
		}
	}
}

/* "PATH: MSG" on stderr, MSG escaped (it quotes what the user gave). */
static void path_error(const char *path, const char *msg)
{
	char esc[4096];
	text_escape(esc, sizeof esc, msg, strlen(msg), 0);
	fprintf(stderr, "%s: %s\n", path, esc);
}

void cmd_error(const char *verb, const char *msg)
{
	char path[64];
	snprintf(path, sizeof path, "loopkit %s", verb);
	path_error(path, msg);
}

/* ---- usage errors ---- */

static int usage_error(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const struct run *r, const char *fmt, ...)
{
	char syn[256], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	path_error(r->path, msg);
	fprintf(stderr, "usage: %s %s  (%s --help for more)\n", r->path, cmd_synopsis(r->v, syn, sizeof syn),
	        r->path);
	return 2;
}

/* Optimal string alignment distance (edits, with swapped neighbours as one), capped. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < c)
				c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c)
				c = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < c)
				c = d[i - 2][j - 2] + 1;
			d[i][j] = c;
		}
	return d[la][lb];
}

/* Is word close enough to candidate to suggest it? Returns the distance, or 99. */
static size_t closeness(const char *word, const char *cand)
{
	size_t n = strlen(word), d = edit_distance(word, cand);
	size_t allowed = n <= 3 ? 1 : n <= 6 ? 2 : 3;
	if (n >= 3 && !strncmp(cand, word, n)) /* an unfinished name */
		return 1;
	return d <= allowed ? d : 99;
}

const char *cmd_closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bd = 99;
	for (size_t i = 0; i < n; i++) {
		size_t d = closeness(word, cands[i]);
		if (d < bd)
			bd = d, best = cands[i];
	}
	return best;
}

/* Prints a hint for arg when the verb has one; returns 1 if it did. */
static int hint(const struct run *r, const char *what, const char *arg, int number)
{
	for (const struct cmd_hint *h = r->v->hints; h && h->arg; h++) {
		if (number ? strcmp(h->arg, CMD_HINT_NUMBER) : strcmp(h->arg, arg))
			continue;
		char text[512];
		size_t o = 0;
		for (const char *p = h->text; *p && o + 1 < sizeof text; p++) {
			if (p[0] == '{' && p[1] == '}') {
				o += (size_t)snprintf(text + o, sizeof text - o, "%s", arg);
				p++;
			} else {
				text[o++] = *p;
			}
		}
		text[o < sizeof text ? o : sizeof text - 1] = '\0';
		usage_error(r, "%s %s: %s", what, arg, text);
		return 1;
	}
	return 0;
}

static int unknown_option(const struct run *r, const char *arg)
{
	char name[72];
	/* never the value after it: "--user:me:s3cret" is a typo that holds a password */
	size_t n = strcspn(arg, "=:");
	snprintf(name, sizeof name, "%.*s%s", (int)(n < 63 ? n : 63), arg, arg[n] == ':' ? ":..." : "");
	if (hint(r, "unknown option", name, 0))
		return 2;
	const char *cands[128];
	size_t nc = 0;
	for (const struct cmd_flag *f = r->v->flags; f && f->name && nc < 127; f++)
		if (cmd_visible(f) && !(f->attr & CMD_ARG))
			cands[nc++] = f->name;
	cands[nc++] = "help";
	const char *best = name[1] == '-' ? cmd_closest(name + 2, cands, nc) : NULL;
	if (best)
		return usage_error(r, "unknown option %s; did you mean --%s?", name, best);
	return usage_error(r, "unknown option %s", name);
}

static const struct cmd_verb *find_sub(const struct cmd_verb *v, const char *name)
{
	for (const struct cmd_verb *const *s = v->subs; s && *s; s++)
		if (!strcmp((*s)->name, name))
			return *s;
	return NULL;
}

static int unknown_sub(const struct run *r, const char *name)
{
	const char *cands[64];
	size_t n = 0;
	for (const struct cmd_verb *const *s = r->v->subs; *s && n < 64; s++)
		cands[n++] = (*s)->name;
	const char *best = cmd_closest(name, cands, n);
	const char *noun = r->v->sub_noun ? r->v->sub_noun : "verb";
	if (best)
		return usage_error(r, "unknown %s '%s'; did you mean '%s'?", noun, name, best);
	return usage_error(r, "unknown %s '%s'", noun, name);
}

/* ---- parsing ---- */

static const struct cmd_flag *find_long(const struct cmd_verb *v, const char *name, size_t n)
{
	for (const struct cmd_flag *f = v->flags; f && f->name; f++)
		if (!(f->attr & CMD_ARG) && strlen(f->name) == n && !strncmp(f->name, name, n))
			return f;
	return NULL;
}

static const struct cmd_flag *find_short(const struct cmd_verb *v, char c)
{
	for (const struct cmd_flag *f = v->flags; f && f->name; f++)
		if (!(f->attr & CMD_ARG) && f->letter == c)
			return f;
	return NULL;
}

static int bad_value(const struct run *r, const char *flag, const char *val, const char *why)
{
	char msg[2048];
	snprintf(msg, sizeof msg, "%s %s: %s", flag, val, why); /* why may quote val too */
	path_error(r->path, msg);
	return 2;
}

static int dispatch(const struct cmd_verb *v, const char *parent, int argc, char **argv);

/* `VERB help [SUB...]`: the help of the verb at the end of the path. */
static int help_for(const struct run *r, int argc, char **argv)
{
	const struct cmd_verb *v = r->v;
	struct run sub = *r;
	for (int i = 0; i < argc; i++) {
		const struct cmd_verb *s = find_sub(v, argv[i]);
		if (!s)
			return v->subs ? unknown_sub(&sub, argv[i]) : usage_error(&sub, "no subcommands");
		v = sub.v = s;
		snprintf(sub.path + strlen(sub.path), sizeof sub.path - strlen(sub.path), " %s", s->name);
	}
	print_help(stdout, v, sub.path);
	return 0;
}

/* Parses argv[1..argc) into opts. Returns -1 to go on, else the exit status. A verb with
 * subcommands hands the rest of argv to the first argument that is not an option. */
static int parse(const struct run *r, void *opts, int argc, char **argv)
{
	const struct cmd_verb *v = r->v;
	const struct cmd_flag *pos = v->flags;
	char err[STRPARSE_ERR_MAX + 64];
	int only_args = 0;

	for (const struct cmd_flag *f = v->flags; f && f->name; f++)
		if (f->def && set_value(f, opts, f->def, err, sizeof err) < 0) {
			fprintf(stderr, "%s: internal error: default %s of %s: %s\n", r->path, f->def,
			        f->name, err);
			return 2;
		}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		const struct cmd_flag *f = NULL;
		char flag[80];
		if (only_args || a[0] != '-' || !a[1]) {
			if (v->subs && !only_args) {
				if (!strcmp(a, "help"))
					return help_for(r, argc - i - 1, argv + i + 1);
				if (!find_sub(v, a))
					return unknown_sub(r, a);
				return dispatch(find_sub(v, a), r->path, argc - i, argv + i);
			}
			while (pos && pos->name && !(pos->attr & CMD_ARG))
				pos++;
			if (pos && pos->name && (pos->attr & CMD_REST)) {
				struct cmd_rest rest = {argc - i, argv + i};
				memcpy((char *)opts + pos->off, &rest, sizeof rest);
				pos++;
				break;
			}
			if (!pos || !pos->name) {
				uint64_t u;
				int number = strparse_uint(a, 0, UINT64_MAX, &u, NULL, 0) == 0;
				if (number && hint(r, "unexpected argument", a, 1))
					return 2;
				return usage_error(r, "unexpected argument '%s'", a);
			}
			if (set_value(pos, opts, a, err, sizeof err) < 0)
				return bad_value(r, pos->name, a, err);
			if (pos->kind != CMD_LIST)
				pos++;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_args = 1;
			continue;
		}
		if (a[1] == '-') {
			size_t n = strcspn(a + 2, "=");
			if (n == 4 && !strncmp(a + 2, "help", 4)) {
				print_help(stdout, v, r->path);
				return 0;
			}
			if (!(f = find_long(v, a + 2, n)))
				return unknown_option(r, a);
			snprintf(flag, sizeof flag, "--%s", f->name);
			if (a[2 + n] == '=') {
				if (f->kind == CMD_SWITCH)
					return usage_error(r, "%s takes no value", flag);
				val = a + 3 + n;
			}
		} else {
			/* -abc: switches a and b, then c; a value-taking letter takes the rest */
			for (const char *p = a + 1; *p; p++) {
				if (*p == 'h') {
					print_help(stdout, v, r->path);
					return 0;
				}
				snprintf(flag, sizeof flag, "-%c", *p);
				if (!(f = find_short(v, *p)))
					return unknown_option(r, flag);
				if (f->kind != CMD_SWITCH) {
					if (p[1])
						val = p[1] == '=' ? p + 2 : p + 1;
					break;
				}
				set_value(f, opts, NULL, err, sizeof err);
			}
			if (f->kind == CMD_SWITCH)
				continue;
		}
		if (f->kind == CMD_SWITCH) {
			set_value(f, opts, NULL, err, sizeof err);
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				return usage_error(r, "%s needs a value (%s)", flag,
				                   cmd_flag_arg(f, err, sizeof err));
			val = argv[++i];
		}
		if (set_value(f, opts, val, err, sizeof err) < 0)
			return bad_value(r, flag, f->attr & CMD_SECRET ? "(value not shown)" : val, err);
	}
	if (v->subs && !v->run) {
		print_help(stderr, v, r->path);
		return 2;
	}
	for (; pos && pos->name; pos++)
		if ((pos->attr & (CMD_ARG | CMD_NEED)) == (CMD_ARG | CMD_NEED)) {
			struct cmd_list *l = (struct cmd_list *)(void *)((char *)opts + pos->off);
			if ((pos->kind != CMD_LIST || !l->n) && !(pos->attr & CMD_REST))
				return usage_error(r, "which %s?", pos->name);
			if (pos->attr & CMD_REST &&
			    !((struct cmd_rest *)(void *)((char *)opts + pos->off))->argc)
				return usage_error(r, "which %s?", pos->name);
		}
	return -1;
}

static int dispatch(const struct cmd_verb *v, const char *parent, int argc, char **argv)
{
	struct run r = {.v = v};
	snprintf(r.path, sizeof r.path, "%s%s%s", parent, *parent ? " " : "", v->name);
	void *opts = calloc(1, v->size ? v->size : 1);
	if (!opts) {
		fprintf(stderr, "%s: out of memory\n", r.path);
		return 1;
	}
	if (v->init)
		v->init(opts);
	int rc = parse(&r, opts, argc, argv);
	if (rc < 0)
		rc = v->run(opts);
	if (v->fini)
		v->fini(opts);
	free(opts);
	return rc;
}

int cmd_main(const struct cmd_verb *root, int argc, char **argv)
{
	return dispatch(root, "", argc, argv);
}

const struct cmd_verb *cmd_find(const struct cmd_verb *root, const char *path, char *full, size_t len)
{
	const struct cmd_verb *v = root;
	snprintf(full, len, "%s", root->name);
	if (!strcmp(path, root->name))
		return root;
	char word[64];
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, " ");
		snprintf(word, sizeof word, "%.*s", (int)(n < 63 ? n : 63), p);
		if (!(v = find_sub(v, word)))
			return NULL;
		snprintf(full + strlen(full), len - strlen(full), " %s", v->name);
		p += n;
		p += strspn(p, " ");
	}
	return v;
}

int cmd_render_help(FILE *f, const struct cmd_verb *v, const char *path)
{
	print_help(f, v, path);
	return 0;
}
