// `rotary plot CONFIG --out FILE.svg`: wavelength per pair before and after scaling, and the
// long-term decay of RoFormer's relative-position bound, as one SVG document.
#pragma once

#include <string>

#include "config_source.h"

namespace rotary::tools {

// Writes the SVG atomically (temporary name, then rename). Series are <polyline> elements with
// ids "wavelength-unscaled", "wavelength-scaled" and "decay-bound", each with a data-points
// attribute holding the plotted numbers as "x,y x,y ...". The decay bound is the library's
// long_term_decay_bound (rotary/decay.h), sampled at fractional distances on a log scale.
void write_plot(const LoadedConfig& loaded, const std::string& out);

}  // namespace rotary::tools
