// `rotary plot CONFIG --out FILE.svg`: wavelength per pair before and after scaling, and the
// long-term decay of RoFormer's relative-position bound, as one SVG document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config_source.h"

namespace rotary::tools {

// RoFormer (Su et al. 2021, section 3.4.3): with h_i = q_i conj(k_i) varying slowly,
// |sum_i h_i e^{i r theta_i}| <= (max_i |h_{i+1} - h_i|) * sum_{j=1}^{d/2} |S_j|, where
// S_j = sum_{k<j} e^{i r theta_k}. Returned: (1 / (d/2)) * sum_j |S_j| at relative distance r.
double relative_distance_bound(const std::vector<float>& inv_freq, double r);

// Writes the SVG atomically (temporary name, then rename). Series are <polyline> elements with
// ids "wavelength-unscaled", "wavelength-scaled" and "decay-bound", each with a data-points
// attribute holding the plotted numbers as "x,y x,y ...".
void write_plot(const LoadedConfig& loaded, const std::string& out);

}  // namespace rotary::tools
