/* svg.c - plots for bench: latency by percentile ("nines" axis) and values over time. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

#define W  760
#define H  420
#define ML 80  /* margins */
#define MR 20
#define MT 40
#define MB 60
#define MAX_NINES 5.0

static const char *const colors[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd" };

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

/* A round step of about range/5. */
static double nice_step(double range)
{
	if (!(range > 0))
		return 1;
	double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void header(FILE *f, const char *title)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	           "font-family=\"sans-serif\" font-size=\"12\">\n"
	           "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	           "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">",
	        W, H, W, H, ML);
	esc(f, title);
	fprintf(f, "</text>\n");
}

/* y axis with gridlines from 0 to ymax; returns the top of the axis. */
static double y_axis(FILE *f, double ymax, const char *unit)
{
	double step = nice_step(ymax), top = ceil(ymax / step) * step;
	if (!(top > 0))
		top = 1, step = 0.2;
	for (double v = 0; v <= top + step / 2; v += step) {
		double y = H - MB - v / top * (H - MT - MB);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y, W - MR, y);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ML - 6, y + 4, v);
	}
	fprintf(f, "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">", (H - MB + MT) / 2);
	esc(f, unit);
	fprintf(f, "</text>\n");
	return top;
}

static int finish(FILE *f)
{
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n</svg>\n", ML,
	        MT, W - ML - MR, H - MT - MB);
	int bad = ferror(f);
	if (fclose(f) || bad)
		return -1;
	return 0;
}

int bench_svg_percentiles(const char *path, const char *title, const struct bench_svg_series *s, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	header(f, title);
	double ymax = 0;
	for (size_t k = 0; k < n; k++)
		if (s[k].h->count && (double)s[k].h->max / 1e3 > ymax)
			ymax = (double)s[k].h->max / 1e3;
	int ms = ymax >= 10000;
	double scale = ms ? 1e6 : 1e3; /* ns per unit */
	double top = y_axis(f, ms ? ymax / 1e3 : ymax, ms ? "latency (ms)" : "latency (us)");
	static const char *const lbl[] = { "0%", "90%", "99%", "99.9%", "99.99%", "99.999%" };
	for (int i = 0; i <= (int)MAX_NINES; i++) {
		double x = ML + i / MAX_NINES * (W - ML - MR);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, MT, x, H - MB);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, H - MB + 18, lbl[i]);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n", (ML + W - MR) / 2, H - 18);
	for (size_t k = 0; k < n; k++) {
		const struct hist *h = s[k].h;
		const char *col = colors[k % 4];
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
		uint64_t seen = 0;
		double px = ML;
		for (size_t i = 0; h->count && i < HIST_BUCKETS; i++) {
			if (!h->counts[i])
				continue;
			double frac = (double)seen / (double)h->count; /* the bucket starts here */
			seen += h->counts[i];
			double v = (double)(hist_bucket_low(i) + (hist_bucket_high(i) - hist_bucket_low(i)) / 2);
			if (v > (double)h->max)
				v = (double)h->max;
			double nines = frac < 1 ? -log10(1 - frac) : MAX_NINES;
			if (nines > MAX_NINES)
				nines = MAX_NINES;
			double x = ML + nines / MAX_NINES * (W - ML - MR);
			double y = H - MB - v / scale / top * (H - MT - MB);
			fprintf(f, "%.1f,%.1f %.1f,%.1f ", px > x ? x : px, y, x, y);
			px = x;
			if (seen == h->count) {
				double fin = -log10(1.0 / (double)h->count);
				double xe = ML + (fin > MAX_NINES ? MAX_NINES : fin) / MAX_NINES * (W - ML - MR);
				fprintf(f, "%.1f,%.1f", xe, y);
			}
		}
		fprintf(f, "\"/>\n<rect x=\"%d\" y=\"%zu\" width=\"12\" height=\"12\" fill=\"%s\"/>"
		           "<text x=\"%d\" y=\"%zu\">",
		        ML + 12, (size_t)MT + 10 + k * 18, col, ML + 30, (size_t)MT + 21 + k * 18);
		esc(f, s[k].name);
		fprintf(f, "</text>\n");
	}
	return finish(f);
}

int bench_svg_series(const char *path, const char *title, const char *unit, const double *v, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	header(f, title);
	double ymax = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > ymax)
			ymax = v[i];
	double top = y_axis(f, ymax, unit);
	size_t span = n > 1 ? n : 1;
	double xstep = nice_step((double)span);
	if (xstep < 1)
		xstep = 1;
	for (double s = 0; s <= (double)span + 0.01; s += xstep) {
		double x = ML + s / (double)span * (W - ML - MR);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x, H - MB + 18, s);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">seconds</text>\n", (ML + W - MR) / 2, H - 18);
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[0]);
	for (size_t i = 0; i < n; i++) {
		double x = ML + (double)(i + 1) / (double)span * (W - ML - MR);
		double y = H - MB - v[i] / top * (H - MT - MB);
		fprintf(f, "%.1f,%.1f ", x, y);
	}
	fprintf(f, "\"/>\n");
	return finish(f);
}
