#include "plot.h"

#include <cstdio>

namespace rotary::tools {

int refuse_plot() {
  // One renderer: the Python package's, on a real plotting library (tick labels, legends, PNG,
  // SVG and PDF), rather than a second hand-written one here.
  std::fputs(
      "rotary: plot: plotting is part of the Python package, not of this tool; nothing was "
      "written.\n"
      "  pip install 'rotary[plot]'\n"
      "  python -m rotary plot CONFIG [CONFIG ...] --out FILE.png|FILE.svg|FILE.pdf\n",
      stderr);
  return 2;
}

}  // namespace rotary::tools
