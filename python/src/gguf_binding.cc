// gguf_rope and gguf_rope_mode (rotary/gguf_rope.h) over a GGUF file's metadata as Python holds
// it: a dict {"architecture": str, "keys": dict, "rope_tensors": dict}, or an object with those
// attributes (rotary.gguf.GgufMetadata). Values are Python bools, ints, floats and strs, tuples or
// lists of numbers, or NumPy arrays and scalars; each is converted by the C++ reader's rules (an
// integer array to int64, one with a float to float64, a RoPE tensor to float32). And
// gguf_compare (rotary/gguf_verify.h), over gguf_rope's pieces and the original config.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "binding.h"
#include "rotary/gguf_verify.h"

namespace rotary::python {

namespace {

// metadata[name] for a dict, else metadata.name.
nb::object field(nb::handle metadata, const char* name) {
  if (nb::isinstance<nb::dict>(metadata)) {
    nb::dict d = nb::borrow<nb::dict>(metadata);
    if (!d.contains(name)) invalid("metadata", std::string("expected a '") + name + "' entry");
    return d[name];
  }
  if (!nb::hasattr(metadata, name)) {
    invalid("metadata", std::string("expected a dict or an object with '") + name + "'");
  }
  return metadata.attr(name);
}

// A NumPy array or scalar (anything with tolist(), a torch.Tensor too) as Python values.
nb::object plain(nb::handle value) {
  if (nb::isinstance<nb::str>(value) || nb::isinstance<nb::bool_>(value) ||
      nb::isinstance<nb::int_>(value) || nb::isinstance<nb::float_>(value)) {
    return nb::borrow(value);
  }
  return nb::hasattr(value, "tolist") ? value.attr("tolist")() : nb::borrow(value);
}

int64_t to_int64(nb::handle v, const std::string& key) {
  int64_t out = 0;
  if (!nb::try_cast(v, out)) invalid(key, "an integer outside the int64 range");
  return out;
}

// A list or tuple of numbers: int64 when every entry is an int (or bool), else float64.
GgufValue numbers(nb::handle sequence, const std::string& key) {
  std::vector<int64_t> ints;
  std::vector<double> floats;
  bool any_float = false;
  for (nb::handle item : sequence) {
    if (nb::isinstance<nb::float_>(item)) {
      any_float = true;
      floats.push_back(nb::cast<double>(item));
    } else if (nb::isinstance<nb::int_>(item)) {  // bool is an int in Python
      ints.push_back(to_int64(item, key));
      floats.push_back(static_cast<double>(ints.back()));
    } else {
      invalid(key, "expected an array of numbers");
    }
  }
  if (any_float) return floats;
  return ints;
}

GgufValue value_of(nb::handle raw, const std::string& key) {
  const nb::object v = plain(raw);
  if (nb::isinstance<nb::bool_>(v)) return nb::cast<bool>(v);
  if (nb::isinstance<nb::int_>(v)) return to_int64(v, key);
  if (nb::isinstance<nb::float_>(v)) return nb::cast<double>(v);
  if (nb::isinstance<nb::str>(v)) return nb::cast<std::string>(v);
  if (nb::isinstance<nb::list>(v) || nb::isinstance<nb::tuple>(v)) return numbers(v, key);
  invalid(key, "expected a bool, int, float, str or an array of numbers, got " +
                   std::string(nb::type_name(v.type()).c_str()));
}

std::vector<float> tensor_of(nb::handle raw, const std::string& name) {
  const nb::object v = plain(raw);
  if (!nb::isinstance<nb::list>(v) && !nb::isinstance<nb::tuple>(v)) {
    invalid(name, "expected a 1-D array of numbers");
  }
  std::vector<float> out;
  for (nb::handle item : v) {
    if (!nb::isinstance<nb::float_>(item) && !nb::isinstance<nb::int_>(item)) {
      invalid(name, "expected a 1-D array of numbers");
    }
    out.push_back(static_cast<float>(nb::cast<double>(item)));
  }
  return out;
}

GgufMetadata metadata_of(nb::handle metadata) {
  GgufMetadata m;
  const nb::object architecture = field(metadata, "architecture");
  if (!nb::isinstance<nb::str>(architecture)) invalid("metadata.architecture", "expected a str");
  m.architecture = nb::cast<std::string>(architecture);
  const nb::object keys = field(metadata, "keys");
  const nb::object tensors = field(metadata, "rope_tensors");
  if (!nb::isinstance<nb::dict>(keys)) invalid("metadata.keys", "expected a dict");
  if (!nb::isinstance<nb::dict>(tensors)) invalid("metadata.rope_tensors", "expected a dict");
  for (auto [key, value] : nb::borrow<nb::dict>(keys)) {
    if (!nb::isinstance<nb::str>(key)) invalid("metadata.keys", "expected str keys");
    const std::string name = nb::cast<std::string>(key);
    m.keys[name] = value_of(value, name);
  }
  for (auto [key, value] : nb::borrow<nb::dict>(tensors)) {
    if (!nb::isinstance<nb::str>(key)) invalid("metadata.rope_tensors", "expected str keys");
    const std::string name = nb::cast<std::string>(key);
    m.rope_tensors[name] = tensor_of(value, name);
  }
  return m;
}

std::tuple<RopeConfig, std::string, bool, std::vector<std::string>> rope_of(
    nb::handle metadata, std::optional<int64_t> context_length) {
  GgufRope r = gguf_rope(metadata_of(metadata), context_length);
  return {std::move(r.config), std::move(r.rope_mode), r.qk_rows_permuted, std::move(r.notes)};
}

// compare_gguf over the pieces of a GgufRope (as gguf_rope returns them here):
// (match, [(severity, topic, message)], theta_gguf, theta_config, attention_gguf,
// attention_config, context).
using Comparison = std::tuple<bool, std::vector<std::tuple<std::string, std::string, std::string>>,
                              std::vector<double>, std::vector<double>, double, double, int64_t>;

Comparison compare_of(const RopeConfig& gguf_config, const std::string& rope_mode,
                      bool qk_rows_permuted, const std::vector<std::string>& notes,
                      const RopeConfig& config, int64_t context, const std::string& architecture) {
  const GgufRope gguf{gguf_config, rope_mode, qk_rows_permuted, notes};
  GgufComparison r = compare_gguf(gguf, config, context, architecture);
  std::vector<std::tuple<std::string, std::string, std::string>> findings;
  for (verify::Finding& f : r.findings) {
    findings.emplace_back(std::string(verify::to_string(f.severity)), std::move(f.topic),
                          std::move(f.message));
  }
  return {r.match(),
          std::move(findings),
          std::move(r.theta_gguf),
          std::move(r.theta_config),
          r.attention_gguf,
          r.attention_config,
          r.context};
}

std::tuple<std::string, bool> mode_of(nb::handle metadata) {
  const GgufRopeMode mode = gguf_rope_mode(metadata_of(metadata));
  return {mode.rope_mode, mode.qk_rows_permuted};
}

}  // namespace

void bind_gguf(nb::module_& m) {
  m.def("gguf_rope", &rope_of, nb::arg("metadata"), nb::arg("context_length") = nb::none());
  m.def("gguf_rope_mode", &mode_of, nb::arg("metadata"));
  m.def("gguf_compare", &compare_of, nb::arg("gguf_config"), nb::arg("rope_mode"),
        nb::arg("qk_rows_permuted"), nb::arg("notes"), nb::arg("config"), nb::arg("context"),
        nb::arg("architecture"));
}

}  // namespace rotary::python
