# rotary_find_prerequisite(<package> <version> <what> <debian-package>)
#
# find_package for a library rotary's build needs from the system, with a message that says which
# one is missing and how to get it: `pip install .` users see CMake's output only when it fails,
# and CMake's own "Could not find a package configuration file" names neither the library nor the
# package that provides it. A macro, not a function, so that what find_package sets (<package>_DIR,
# <package>_FOUND, the imported targets' variables) stays visible to the caller.
macro(rotary_find_prerequisite package version what debian_package)
  find_package(${package} ${version} QUIET)
  if(NOT ${package}_FOUND)
    message(FATAL_ERROR
      "rotary needs ${what} (CMake package '${package}', version ${version} or newer), and it was "
      "not found.\n"
      "  Debian/Ubuntu: sudo apt-get install ${debian_package}\n"
      "  (In a clone of the repository, scripts/install-deps.sh installs all of them.)\n"
      "  Elsewhere: install ${what} and add its install prefix to CMAKE_PREFIX_PATH.")
  endif()
endmacro()
