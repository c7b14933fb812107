// Splitting a call over threads: tokens are independent, so contiguous blocks of tokens go to
// OpenMP threads. Small calls stay on the caller's thread: waking a thread costs microseconds,
// more than rotating a decode step.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(ROTARY_HAVE_OPENMP)
#include <omp.h>
#endif

namespace rotary::detail {

// Below this many elements per thread a worker's wake-up outweighs its share of the work
// (~256 KiB of float32: an order of magnitude above a wake-up at memory bandwidth).
inline constexpr int64_t kMinElementsPerThread = int64_t{1} << 16;

// How many threads a call of `tokens * elements_per_token` elements uses, capped by `max_threads`
// (0 = every hardware thread).
inline int threads_for(int64_t tokens, int64_t elements_per_token, int max_threads) {
#if defined(ROTARY_HAVE_OPENMP)
  const int available = max_threads > 0 ? max_threads : omp_get_max_threads();
  const int64_t by_size = tokens * std::max<int64_t>(elements_per_token, 1) / kMinElementsPerThread;
  return static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(by_size, tokens), 1, available));
#else
  (void)tokens, (void)elements_per_token, (void)max_threads;
  return 1;
#endif
}

template <typename Body>
void parallel_for(int64_t tokens, int64_t elements_per_token, int max_threads, const Body& body) {
  const int threads = threads_for(tokens, elements_per_token, max_threads);
  if (threads <= 1) {
    for (int64_t t = 0; t < tokens; ++t) body(t);
    return;
  }
#if defined(ROTARY_HAVE_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t t = 0; t < tokens; ++t) body(t);
#endif
}

}  // namespace rotary::detail
