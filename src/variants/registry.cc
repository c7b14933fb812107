// The units of ROTARY_ROPE_TYPES (include/rotary/config.h): unit kFooVariant for RopeType::kFoo.
#include <algorithm>
#include <array>
#include <string>

#include "variants/variant.h"

namespace rotary {
namespace detail {

#define ROTARY_DECLARE_VARIANT(id, name) extern const RopeVariant id##Variant;
ROTARY_ROPE_TYPES(ROTARY_DECLARE_VARIANT)
#undef ROTARY_DECLARE_VARIANT

namespace {

// Both lists and the enum come from one macro, so an enumerator is an index into each.
#define ROTARY_VARIANT_ADDRESS(id, name) &id##Variant,
constexpr std::array kVariants = {ROTARY_ROPE_TYPES(ROTARY_VARIANT_ADDRESS)};
#undef ROTARY_VARIANT_ADDRESS

#define ROTARY_VARIANT_NAME(id, name) std::string_view(name),
constexpr std::array kNames = {ROTARY_ROPE_TYPES(ROTARY_VARIANT_NAME)};
#undef ROTARY_VARIANT_NAME

}  // namespace

const RopeVariant& variant_of(RopeType type) {
  return *kVariants.at(static_cast<std::size_t>(type));
}

std::optional<RopeType> find_rope_type(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name ||
        std::ranges::find(kVariants[i]->aliases, name) != kVariants[i]->aliases.end()) {
      return static_cast<RopeType>(i);
    }
  }
  return std::nullopt;
}

std::string rope_type_names() {
  std::string names;
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    names += (i ? ", " : "") + std::string(kNames[i]);
    for (std::string_view alias : kVariants[i]->aliases) names += " (" + std::string(alias) + ")";
  }
  return names;
}

std::vector<RopeType> fit_order() {
  std::vector<RopeType> types;
  for (std::size_t i = 0; i < kVariants.size(); ++i) {
    if (kVariants[i]->fit) types.push_back(static_cast<RopeType>(i));
  }
  std::ranges::stable_sort(types, {}, [](RopeType t) { return variant_of(t).fit_rank; });
  return types;
}

}  // namespace detail

std::string_view to_string(RopeType type) {
  return detail::kNames.at(static_cast<std::size_t>(type));
}

}  // namespace rotary
