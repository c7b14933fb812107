// rotary::Error -> rotary.Error (a ValueError subclass) with the same message, plus `argument`
// (the offending argument or field) and `code` ("invalid_argument", ...).
#include <exception>
#include <string>

#include "binding.h"

namespace rotary::python {

namespace {

nb::object& error_type() {
  static nb::object type;
  return type;
}

const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kInvalidConfig:
      return "invalid_config";
    case ErrorCode::kParseError:
      return "parse_error";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kDeviceError:
      return "device_error";
  }
  return "unknown";
}

void translate_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const Error& e) {
    PyObject* instance = PyObject_CallFunction(error_type().ptr(), "s", e.what());
    if (!instance) return;  // the pending Python error explains itself
    nb::handle h(instance);
    nb::setattr(h, "argument", nb::str(e.argument().c_str()));
    nb::setattr(h, "code", nb::str(code_name(e.code())));
    PyErr_SetObject(error_type().ptr(), instance);
    Py_DECREF(instance);
  }
}

}  // namespace

void invalid(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

void bind_errors(nb::module_& m) {
  error_type() = nb::borrow(PyErr_NewException("rotary.Error", PyExc_ValueError, nullptr));
  m.attr("Error") = error_type();
  nb::register_exception_translator(&translate_error);
}

}  // namespace rotary::python
