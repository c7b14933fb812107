// `rotary plot`: figures are drawn by the Python package (rotary.plot, on matplotlib), not by this
// tool. The subcommand stays so that a user who reaches for it learns where plotting went.
#pragma once

namespace rotary::tools {

// Prints on stderr that plotting is part of the Python package and how to install and run it;
// writes nothing and returns 2 (the exit status of bad usage).
int refuse_plot();

}  // namespace rotary::tools
