#include "plot.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <sstream>
#include <vector>

#include "atomic_file.h"
#include "rotary/decay.h"
#include "rotary/frequencies.h"

namespace rotary::tools {
namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

struct Series {
  std::string id, label, colour;
  std::vector<std::pair<double, double>> points;  // data coordinates
};

// One panel: x linear or log10, y log10, polylines scaled into a w x h box at (left, top).
void panel(std::ostringstream& svg, const std::string& title, const std::string& x_label,
           const std::string& y_label, bool log_x, const std::vector<Series>& series, double left,
           double top, double w, double h) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  const auto tx = [&](double x) { return log_x ? std::log10(x) : x; };
  for (const Series& s : series) {
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, tx(x)), x1 = std::max(x1, tx(x));
      y0 = std::min(y0, std::log10(y)), y1 = std::max(y1, std::log10(y));
    }
  }
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  svg << "<g class=\"panel\">\n<text x=\"" << left << "\" y=\"" << top - 10
      << "\" font-size=\"15\" font-weight=\"bold\">" << escape(title) << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
  svg << "<text x=\"" << left + w / 2 << "\" y=\"" << top + h + 32
      << "\" font-size=\"12\" text-anchor=\"middle\">" << escape(x_label) << "</text>\n";
  svg << "<text x=\"" << left - 45 << "\" y=\"" << top + h / 2
      << "\" font-size=\"12\" text-anchor=\"middle\" "
      << "transform=\"rotate(-90 " << left - 45 << " " << top + h / 2 << ")\">" << escape(y_label)
      << "</text>\n";
  // Decade ticks on the log axes.
  for (int e = static_cast<int>(std::ceil(y0)); e <= static_cast<int>(std::floor(y1)); ++e) {
    const double y = top + h - (e - y0) / (y1 - y0) * h;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + 4
        << "\" font-size=\"10\" text-anchor=\"end\">1e" << e << "</text>\n";
  }
  for (int e = static_cast<int>(std::ceil(x0)); log_x && e <= static_cast<int>(std::floor(x1));
       ++e) {
    const double x = left + (e - x0) / (x1 - x0) * w;
    svg << "<text x=\"" << x << "\" y=\"" << top + h + 15
        << "\" font-size=\"10\" text-anchor=\"middle\">1e" << e << "</text>\n";
  }
  double legend_y = top + 16;
  for (const Series& s : series) {
    svg << "<polyline id=\"" << s.id << "\" fill=\"none\" stroke=\"" << s.colour
        << "\" stroke-width=\"1.5\" points=\"";
    for (auto [x, y] : s.points) {
      svg << left + (tx(x) - x0) / (x1 - x0) * w << ","
          << top + h - (std::log10(y) - y0) / (y1 - y0) * h << " ";
    }
    svg << "\" data-points=\"";
    for (auto [x, y] : s.points) svg << x << "," << y << " ";
    svg << "\"/>\n<text x=\"" << left + w - 8 << "\" y=\"" << legend_y
        << "\" font-size=\"11\" text-anchor=\"end\" fill=\"" << s.colour << "\">" << escape(s.label)
        << "</text>\n";
    legend_y += 15;
  }
  svg << "</g>\n";
}

}  // namespace

void write_plot(const LoadedConfig& loaded, const std::string& out) {
  const RopeConfig& c = loaded.config;
  const Frequencies scaled = compute_frequencies(c);
  const Frequencies plain = compute_frequencies(c.unscaled());

  Series before{"wavelength-unscaled", "unscaled", "#1f77b4", {}};
  Series after{"wavelength-scaled",
               "after " + std::string(to_string(c.rope_type)) + " scaling",
               "#d62728",
               {}};
  for (std::size_t i = 0; i < scaled.inv_freq.size(); ++i) {
    before.points.emplace_back(static_cast<double>(i), 2 * std::numbers::pi / plain.inv_freq[i]);
    if (scaled.inv_freq[i] > 0) {
      after.points.emplace_back(static_cast<double>(i), 2 * std::numbers::pi / scaled.inv_freq[i]);
    }
  }
  const double context = static_cast<double>(std::max<int64_t>(c.max_position_embeddings, 1024));
  Series bound{"decay-bound", "(1/(d/2)) sum_j |S_j|", "#2ca02c", {}};
  for (int k = 0; k <= 400; ++k) {
    const double r = std::pow(10.0, k * std::log10(4 * context) / 400);
    bound.points.emplace_back(r, long_term_decay_bound(scaled.inv_freq, r));
  }

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"820\" "
         "font-family=\"sans-serif\">\n"
      << "<title>" << escape("RoPE of " + loaded.label) << "</title>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  panel(svg, "Wavelength per rotated pair (" + loaded.label + ")", "pair index i",
        "wavelength 2 pi / theta_i (tokens)", false, {before, after}, 90, 50, 780, 300);
  panel(svg, "Long-term decay: RoFormer's relative-distance bound", "relative distance (tokens)",
        "bound", true, {bound}, 90, 450, 780, 300);
  svg << "</svg>\n";

  write_atomically(out, [&](std::ofstream& file) { file << svg.str(); });
}

}  // namespace rotary::tools
