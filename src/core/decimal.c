/* decimal.c - powers and logarithms of ten; see decimal.h for why they are ours. */
#include "core/decimal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double dec_pow10(int n)
{
	if (n > 22 || n < -22) { /* products would round more than once: the correctly rounded
		                  * value, as the literal 1eN is (glibc's strtod is exact) */
		char t[16];
		snprintf(t, sizeof t, "1e%d", n);
		return strtod(t, NULL);
	}
	double p = 1;
	for (int i = n < 0 ? -n : n; i > 0; i--)
		p *= 10;
	return n < 0 ? 1 / p : p;
}

double dec_log10(double x)
{
	if (!(x > 0))
		return x == x ? -HUGE_VAL : x;
	if (x == HUGE_VAL)
		return x;
	/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m-1)/(m+1),
	 * |s| <= 0.172: the series' terms fall by s^2 <= 0.03, so 12 are enough */
	int e;
	double m = frexp(x, &e);
	if (m < 0.70710678118654752440) {
		m *= 2;
		e--;
	}
	double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
	for (int k = 1; k <= 25; k += 2) {
		sum += term / k;
		term *= s2;
	}
	return (2 * sum + e * 0.69314718055994530942) / 2.30258509299404568402;
}

int dec_floor_log10(double x)
{
	if (!(x > 0) || x == HUGE_VAL)
		return 0;
	double l = dec_log10(x);
	int d = (int)l - (l < 0 && l != (int)l);
	/* the estimate is off by at most one near a power of ten: compare with the powers */
	while (d < 308 && dec_pow10(d + 1) <= x)
		d++;
	while (d > -308 && dec_pow10(d) > x)
		d--;
	return d;
}
