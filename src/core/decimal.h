/* decimal.h - powers and logarithms of ten, without libm.
 *
 * These are the only libm functions the tree needed (axis ticks of bench's SVG plots,
 * decimals of JSON figures); linking libm.so for them cost every start 11 page faults,
 * 0.3 ms on a VM (docs/architecture.md). sqrt, round, floor and ceil need no library:
 * the build's -fno-math-errno -fno-trapping-math lets the compiler inline them. */
#ifndef LOOPKIT_CORE_DECIMAL_H
#define LOOPKIT_CORE_DECIMAL_H

/* 10^n, correctly rounded: the double of the literal 1eN, as pow(10, n). */
double dec_pow10(int n);

/* floor(log10(x)) for a finite x > 0, exact at every power of ten (1000 gives 3, not
 * 2 as a rounded logarithm may); 0 for anything else. */
int dec_floor_log10(double x);

/* log10(x) for a finite x > 0 to about 1e-15 relative (for positions on a log axis);
 * -HUGE_VAL for 0 and below, x itself for infinity and NaN. */
double dec_log10(double x);

#endif
