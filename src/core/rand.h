/* rand.h - splitmix64: cheap, seedable pseudo-random numbers (not for secrets). */
#ifndef LOOPKIT_CORE_RAND_H
#define LOOPKIT_CORE_RAND_H

#include <stdint.h>

/* The next number of the sequence whose state is *s (Steele, Lea, Flood 2014). */
static inline uint64_t rand_splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
