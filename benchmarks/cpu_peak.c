/* The arithmetic peak of this CPU: fused multiply-adds per second in float32 (and bfloat16 dot
 * products where the CPU has AVX512-BF16), on independent accumulators that never wait for each
 * other. Built and run by cpu_peak.py:  cc -O2 -march=native -fopenmp cpu_peak.c; ./a.out THREADS
 * Prints one JSON line: GFLOP/s (a multiply-add counts as 2), the best of 5 runs. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

#define ACCUMULATORS 12 /* enough independent chains to hide the FMA latency */
#define ITERATIONS 50000000L
#define RUNS 5

/* One native register per accumulator: with AVX2's 16 registers, 12 accumulators of 512 bits (24
 * registers) would spill to memory and time stores instead of arithmetic. */
#ifdef __AVX512F__
#define LANES 16
#else
#define LANES 8
#endif
typedef float vec __attribute__((vector_size(LANES * sizeof(float))));

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float float32_chains(void) {
    vec acc[ACCUMULATORS], scale = {0}, shift = {0};
    for (int i = 0; i < LANES; i++) scale[i] = 0.999999f, shift[i] = 1e-7f;
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = scale * (float)i;
    for (long k = 0; k < ITERATIONS; k++)
#pragma GCC unroll 12
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = acc[i] * scale + shift;
    float sum = 0;
    for (int i = 0; i < ACCUMULATORS; i++)
        for (int j = 0; j < LANES; j++) sum += acc[i][j];
    return sum;
}

#ifdef __AVX512BF16__
static float bfloat16_chains(void) {
    __m512 acc[ACCUMULATORS];
    __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80), tiny = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < ITERATIONS; k++)
#pragma GCC unroll 12
        for (int i = 0; i < ACCUMULATORS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], ones, tiny);
    float sum = 0;
    for (int i = 0; i < ACCUMULATORS; i++) sum += _mm512_reduce_add_ps(acc[i]);
    return sum;
}
#endif

/* GFLOP/s of `chains` run by every thread at once; `flops` per iteration of one chain. */
static double peak(float (*chains)(void), int threads, double flops) {
    double best = 0;
    float sink = 0;
    for (int run = 0; run < RUNS; run++) {
        double start = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += chains();
        double rate = flops * ACCUMULATORS * ITERATIONS * threads / (now() - start) / 1e9;
        if (rate > best) best = rate;
    }
    if (sink == 12345.f) puts(""); /* keeps the chains from being optimized away */
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    printf("{\"threads\": %d, \"float32\": %.1f", threads, peak(float32_chains, threads, LANES * 2));
#ifdef __AVX512BF16__
    printf(", \"bfloat16\": %.1f", peak(bfloat16_chains, threads, 32 * 2));
#endif
    puts("}");
    return 0;
}
