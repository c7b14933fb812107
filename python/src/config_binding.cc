// RopeConfig (read-only: configurations come from the readers), the JSON readers, the layer
// rules (which layers rotate, and how), the per-pair words of `rotary inspect` and the multimodal
// position builders.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "binding.h"

namespace rotary::python {

namespace {

std::string config_repr(const RopeConfig& c) {
  std::string s = "RopeConfig(rope_type='" + std::string(to_string(c.rope_type)) + "', layout='" +
                  std::string(to_string(c.layout)) +
                  "', rope_theta=" + nb::repr(nb::float_(c.rope_theta)).c_str() +
                  ", head_dim=" + std::to_string(c.head_dim) +
                  ", rotary_dim=" + std::to_string(c.resolved_rotary_dim()) +
                  ", max_position_embeddings=" + std::to_string(c.max_position_embeddings);
  if (c.factor) s += std::string(", factor=") + nb::repr(nb::float_(*c.factor)).c_str();
  if (c.original_max_position_embeddings) {
    s +=
        ", original_max_position_embeddings=" + std::to_string(*c.original_max_position_embeddings);
  }
  return s + ")";
}

void bind_config_class(nb::module_& m) {
  nb::class_<RopeConfig>(m, "RopeConfig")
      .def_prop_ro("rope_type",
                   [](const RopeConfig& c) { return std::string(to_string(c.rope_type)); })
      .def_prop_ro("layout", [](const RopeConfig& c) { return std::string(to_string(c.layout)); })
      .def_ro("rope_theta", &RopeConfig::rope_theta)
      .def_ro("head_dim", &RopeConfig::head_dim)
      .def_prop_ro("rotary_dim", &RopeConfig::resolved_rotary_dim)
      .def_ro("partial_rotary_factor", &RopeConfig::partial_rotary_factor)
      .def_ro("max_position_embeddings", &RopeConfig::max_position_embeddings)
      .def_ro("factor", &RopeConfig::factor)
      .def_prop_ro("original_max_position_embeddings",
                   &RopeConfig::resolved_original_max_position_embeddings)
      .def_ro("attention_factor", &RopeConfig::attention_factor)
      .def_ro("beta_fast", &RopeConfig::beta_fast)
      .def_ro("beta_slow", &RopeConfig::beta_slow)
      .def_ro("mscale", &RopeConfig::mscale)
      .def_ro("mscale_all_dim", &RopeConfig::mscale_all_dim)
      .def_ro("truncate", &RopeConfig::truncate)
      .def_ro("short_factor", &RopeConfig::short_factor)
      .def_ro("long_factor", &RopeConfig::long_factor)
      .def_ro("short_mscale", &RopeConfig::short_mscale)
      .def_ro("long_mscale", &RopeConfig::long_mscale)
      .def_ro("low_freq_factor", &RopeConfig::low_freq_factor)
      .def_ro("high_freq_factor", &RopeConfig::high_freq_factor)
      .def_ro("alpha", &RopeConfig::alpha)
      .def_prop_ro("mrope_section", &RopeConfig::resolved_mrope_section)
      .def_prop_ro("mrope_order",
                   [](const RopeConfig& c) {
                     return c.num_axes() > 1 && c.rope_type != RopeType::kAxial
                                ? nb::object(nb::str(to_string(c.mrope_order).data()))
                                : nb::none();
                   })
      .def_prop_ro("mrope_interleaved",
                   [](const RopeConfig& c) { return c.mrope_order == MropeOrder::kInterleaved; })
      .def_ro("axial_columns_first", &RopeConfig::axial_columns_first)
      .def_prop_ro("num_axes", &RopeConfig::num_axes)
      .def_prop_ro("pair_axes", &RopeConfig::pair_axes)
      .def_prop_ro("axial_frequencies",
                   [](const RopeConfig& c) {
                     return c.rope_type == RopeType::kAxial
                                ? nb::object(nb::str(to_string(c.axial_frequencies).data()))
                                : nb::none();
                   })
      .def("unscaled", &RopeConfig::unscaled)
      .def("__repr__", &config_repr);
}

// (text_tokens, t, h, w, time_interval) per segment.
using Segment = std::tuple<int64_t, int64_t, int64_t, int64_t, double>;

auto prompt_mrope_positions(const std::vector<Segment>& segments, int64_t spatial_merge_size) {
  std::vector<PromptSegment> prompt;
  for (const auto& [text, t, h, w, interval] : segments) {
    prompt.push_back({text, {t, h, w}, interval});
  }
  MultimodalPositions p = rotary::mrope_positions(prompt, spatial_merge_size);
  return std::make_tuple(std::move(p.ids), p.num_tokens, p.rope_delta);
}

auto grid_patch_positions(const std::vector<std::tuple<int64_t, int64_t, int64_t>>& grids,
                          int64_t spatial_merge_size) {
  std::vector<VisionGrid> g;
  for (const auto& [t, h, w] : grids) g.push_back({t, h, w});
  MultimodalPositions p = rotary::vision_patch_positions(g, spatial_merge_size);
  return std::make_pair(std::move(p.ids), p.num_tokens);
}

void bind_multimodal(nb::module_& m) {
  m.def(
      "vision_config_from_json",
      [](const std::string& text) { return rotary::vision_config_from_json(text); },
      nb::arg("json_text"));
  m.def("mrope_positions", &prompt_mrope_positions, nb::arg("segments"),
        nb::arg("spatial_merge_size"));
  m.def("vision_patch_positions", &grid_patch_positions, nb::arg("grids"),
        nb::arg("spatial_merge_size"));
}

nb::list layer_rope_list(const std::string& text) {
  nb::list out;
  for (const LayerRope& layer : rotary::layer_ropes(text)) {
    out.append(nb::make_tuple(layer.layer_type, layer.rope ? nb::cast(*layer.rope) : nb::none(),
                              layer.reason));
  }
  return out;
}

// (rule, regime) per pair, as `rotary inspect` words them.
std::vector<std::pair<std::string, std::string>> pair_explanations(const RopeConfig& c,
                                                                   int64_t context) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const PairExplanation& e : rotary::explain_pairs(c, context)) {
    out.emplace_back(e.rule, e.regime);
  }
  return out;
}

// (label, text) of the scheme's own parameters, or None.
std::optional<std::pair<std::string, std::string>> scheme_summary(const RopeConfig& c) {
  const std::optional<SchemeSummary> s = rotary::explain_scheme(c);
  if (!s) return std::nullopt;
  return std::make_pair(s->label, s->text);
}

void bind_readers(nb::module_& m) {
  m.def(
      "config_from_json",
      [](const std::string& text, const std::string& layer_type) {
        return rotary::config_from_json(text, layer_type);
      },
      nb::arg("json_text"), nb::arg("layer_type") = "");
  m.def(
      "config_from_json_file",
      [](const std::string& path, const std::string& layer_type) {
        return rotary::config_from_json_file(path, layer_type);
      },
      nb::arg("path"), nb::arg("layer_type") = "");
  m.def(
      "rope_layer_types", [](const std::string& text) { return rotary::rope_layer_types(text); },
      nb::arg("json_text"));
  m.def("layer_ropes", &layer_rope_list, nb::arg("json_text"));
  m.def(
      "explain_length_change", [](const RopeConfig& c) { return rotary::explain_length_change(c); },
      nb::arg("config"));
  m.def("explain_pairs", &pair_explanations, nb::arg("config"), nb::arg("context") = 0);
  m.def("explain_scheme", &scheme_summary, nb::arg("config"));
  m.def(
      "config_to_json", [](const RopeConfig& c) { return rotary::config_to_json(c); },
      nb::arg("config"));
}

}  // namespace

void bind_config(nb::module_& m) {
  bind_config_class(m);
  bind_multimodal(m);
  bind_readers(m);
}

}  // namespace rotary::python
