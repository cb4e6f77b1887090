/* svg.c - plots for bench: latency by percentile (log-log "nines") and values over time. */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "core/decimal.h"

#define W          760
#define H          440
#define ML         80 /* margins: room for the axes' labels and the title */
#define MR         40
#define MT         64
#define MB         60
#define TITLE_X    16
#define TITLE_PX   14  /* the title's font size */
#define CHAR_EM    0.6 /* a sans-serif character is at most this wide, in ems */
#define MAX_NINES  5.0 /* the percentile axis ends at 99.999% */
#define MAX_LINES  3   /* a title wraps into at most this many lines */
#define MAX_POINTS 720 /* a series plot merges samples down to this many steps */

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

static void esc(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++) {
		if (s[i] == '&')
			fputs("&amp;", f);
		else if (s[i] == '<')
			fputs("&lt;", f);
		else if (s[i] == '>')
			fputs("&gt;", f);
		else if (s[i] == '"')
			fputs("&quot;", f);
		else
			fputc(s[i], f);
	}
}

/* A round step of about range/5. */
static double nice_step(double range)
{
	if (!(range > 0))
		return 1;
	double raw = range / 5, p = dec_pow10(dec_floor_log10(raw)), m = raw / p;
	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* The title, wrapped after ", " or ": " so that each line fits the width. */
static void header(FILE *f, const char *title)
{
	fprintf(f,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        W, H, W, H);
	size_t fit = (size_t)((W - 2 * TITLE_X) / (TITLE_PX * CHAR_EM));
	const char *p = title;
	for (int line = 0; line < MAX_LINES && *p; line++) {
		size_t n = strlen(p);
		if (n > fit) { /* break after the last ", " or ": " that fits, else at the width */
			size_t cut = 0;
			for (size_t i = 1; i + 1 < fit; i++)
				if ((p[i] == ',' || p[i] == ':') && p[i + 1] == ' ')
					cut = i + 1;
			n = cut ? cut : fit;
			if (line == MAX_LINES - 1)
				n = fit - 3;
		}
		fprintf(f, "<text class=\"title\" x=\"%d\" y=\"%d\" font-size=\"%d\" font-weight=\"bold\">",
		        TITLE_X, 20 + line * (TITLE_PX + 4), TITLE_PX);
		esc(f, p, n);
		fprintf(f, "%s</text>\n", line == MAX_LINES - 1 && n < strlen(p) ? "..." : "");
		p += n;
		while (*p == ' ')
			p++;
	}
}

static void y_title(FILE *f, const char *text)
{
	fprintf(f, "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">",
	        (H - MB + MT) / 2);
	esc(f, text, strlen(text));
	fprintf(f, "</text>\n");
}

static void y_tick(FILE *f, double y, const char *label)
{
	fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y, W - MR, y);
	fprintf(f, "<text class=\"ytick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6, y + 4,
	        label);
}

static void x_tick(FILE *f, double x, const char *label)
{
	fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, MT, x, H - MB);
	fprintf(f, "<text class=\"xtick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x,
	        H - MB + 18, label);
}

static void x_title(FILE *f, const char *text)
{
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", (ML + W - MR) / 2, H - 18,
	        text);
}

static void legend(FILE *f, size_t k, const char *name)
{
	fprintf(f,
	        "<rect x=\"%d\" y=\"%zu\" width=\"12\" height=\"12\" fill=\"%s\"/>"
	        "<text class=\"legend\" x=\"%d\" y=\"%zu\">",
	        ML + 12, (size_t)MT + 10 + k * 18, colors[k % 4], ML + 30, (size_t)MT + 21 + k * 18);
	esc(f, name, strlen(name));
	fprintf(f, "</text>\n");
}

static int finish(FILE *f)
{
	fprintf(f,
	        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	        "stroke=\"#333\"/>\n</svg>\n",
	        ML, MT, W - ML - MR, H - MT - MB);
	int bad = ferror(f);
	if (fclose(f) || bad)
		return -1;
	return 0;
}

/* A latency in microseconds as a tick label: "20 us", "1.5 ms", "2 s". */
static void fmt_lat(double us, char *out, size_t len)
{
	if (us < 1000)
		snprintf(out, len, "%g us", us);
	else if (us < 1e6)
		snprintf(out, len, "%g ms", us / 1e3);
	else
		snprintf(out, len, "%g s", us / 1e6);
}

/* The logarithmic latency axis: whole decades around [lo, hi] microseconds, with ticks
 * at 1, 2, 5 x 10^d (or at the decades alone when they are many). */
struct logaxis {
	double dlo, dhi; /* log10 of the ends */
};

static double log_y(const struct logaxis *a, double us)
{
	double l = us > 0 ? dec_log10(us) : a->dlo;
	if (l < a->dlo)
		l = a->dlo;
	return H - MB - (l - a->dlo) / (a->dhi - a->dlo) * (H - MT - MB);
}

static void log_axis(FILE *f, struct logaxis *a, double lo, double hi)
{
	double top = hi > lo ? hi : lo * 10;
	int dtop = dec_floor_log10(top);
	a->dlo = dec_floor_log10(lo > 0.01 ? lo : 0.01);
	a->dhi = dtop + (top > dec_pow10(dtop)); /* ceil(log10(top)) */
	if (a->dhi <= a->dlo)
		a->dhi = a->dlo + 1;
	static const double mant[] = {1, 2, 5};
	int few = a->dhi - a->dlo <= 3;
	char t[32];
	for (double d = a->dlo; d <= a->dhi; d++)
		for (int m = 0; m < (few && d < a->dhi ? 3 : 1); m++) {
			double v = mant[m] * dec_pow10((int)d);
			fmt_lat(v, t, sizeof t);
			y_tick(f, log_y(a, v), t);
		}
	y_title(f, "latency (log scale)");
}

/* fopen(path, "w") that never waits: a FIFO put at the name after the check before
 * the run fails (ENXIO without a reader) instead of blocking. */
static FILE *open_plot(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

int bench_svg_percentiles(const char *path, const char *title, const struct bench_svg_series *s, size_t n)
{
	FILE *f = open_plot(path);
	if (!f)
		return -1;
	header(f, title);
	double lo = INFINITY, hi = 0;
	for (size_t k = 0; k < n; k++)
		if (s[k].h->count) {
			double mn = (double)s[k].h->min / 1e3, mx = (double)s[k].h->max / 1e3;
			lo = mn < lo ? mn : lo;
			hi = mx > hi ? mx : hi;
		}
	if (!(hi > 0))
		lo = 1, hi = 10;
	struct logaxis ax;
	log_axis(f, &ax, lo, hi);
	static const char *const lbl[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
	for (int i = 0; i <= (int)MAX_NINES; i++)
		x_tick(f, ML + i / MAX_NINES * (W - ML - MR), lbl[i]);
	x_title(f, "percentile");
	for (size_t k = 0; k < n; k++) {
		const struct hist *h = s[k].h;
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
		        colors[k % 4]);
		uint64_t seen = 0;
		double px = ML;
		for (size_t i = 0; h->count && i < HIST_BUCKETS; i++) {
			if (!h->counts[i])
				continue;
			double frac = (double)seen / (double)h->count; /* the bucket starts here */
			seen += h->counts[i];
			double v =
			        (double)(hist_bucket_low(i) + (hist_bucket_high(i) - hist_bucket_low(i)) / 2);
			if (v > (double)h->max)
				v = (double)h->max;
			if (v < (double)h->min)
				v = (double)h->min;
			double nines = frac < 1 ? -dec_log10(1 - frac) : MAX_NINES;
			if (nines > MAX_NINES)
				nines = MAX_NINES;
			double x = ML + nines / MAX_NINES * (W - ML - MR), y = log_y(&ax, v / 1e3);
			fprintf(f, "%.1f,%.1f %.1f,%.1f ", px > x ? x : px, y, x, y);
			px = x;
			if (seen == h->count) { /* the last sample holds to its own percentile */
				double fin = -dec_log10(1.0 / (double)h->count);
				fprintf(f, "%.1f,%.1f",
				        ML + (fin > MAX_NINES ? MAX_NINES : fin) / MAX_NINES * (W - ML - MR),
				        y);
			}
		}
		fprintf(f, "\"/>\n");
		legend(f, k, s[k].name);
	}
	return finish(f);
}

int bench_svg_series(const char *path, const char *title, const char *unit, const double *v, size_t n,
                     double step_s)
{
	FILE *f = open_plot(path);
	if (!f)
		return -1;
	header(f, title);
	double ymax = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > ymax)
			ymax = v[i];
	double ystep = nice_step(ymax), top = ceil(ymax / ystep) * ystep;
	if (!(top > 0))
		top = 1, ystep = 0.2;
	char t[32];
	for (double y = 0; y <= top + ystep / 2; y += ystep) {
		snprintf(t, sizeof t, "%g", y);
		y_tick(f, H - MB - y / top * (H - MT - MB), t);
	}
	y_title(f, unit);
	double span = n ? (double)n * step_s : 1, xstep = nice_step(span);
	for (double x = 0; x <= span * (1 + 1e-9); x += xstep) {
		snprintf(t, sizeof t, "%g", x);
		x_tick(f, ML + x / span * (W - ML - MR), t);
	}
	x_title(f, "seconds");
	if (!n) {
		fprintf(f,
		        "<text class=\"note\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">the run was shorter "
		        "than one "
		        "sample (%g s): nothing to plot; run longer (-d)</text>\n",
		        (ML + W - MR) / 2, (MT + H - MB) / 2, step_s);
		return finish(f);
	}
	/* each sample is the mean over its interval: a step; merged when there are many */
	size_t per = (n + MAX_POINTS - 1) / MAX_POINTS;
	fprintf(f, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
	        colors[0]);
	for (size_t i = 0; i < n; i += per) {
		size_t m = i + per < n ? per : n - i;
		double sum = 0;
		for (size_t k = 0; k < m; k++)
			sum += v[i + k];
		double y = H - MB - sum / (double)m / top * (H - MT - MB);
		double x0 = ML + (double)i / (double)n * (W - ML - MR),
		       x1 = ML + (double)(i + m) / (double)n * (W - ML - MR);
		fprintf(f, "%.1f,%.1f %.1f,%.1f ", x0, y, x1, y);
	}
	fprintf(f, "\"/>\n");
	return finish(f);
}
