// `rotary list [--json]`: the built-in configurations rotary reads, with the model each comes from
// and the layer types to choose between, then the stored configs rotary refuses and why.
#pragma once

#include <nlohmann/json.hpp>

namespace rotary::tools {

// {"builtins": [{"name", "model", "layer_types", "source": {"repository", "path", "commit"}}],
//  "refused": [{"name", "model", "reason"}]}, each sorted by name.
nlohmann::json builtin_list();

// Prints the list (or, with `as_json`, builtin_list()).
int run_list(bool as_json);

}  // namespace rotary::tools
