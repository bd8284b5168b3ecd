// module.cc - fccl._C: the backend's constructor for torch.distributed (fccl/_backend.py
// registers it), the bridge from a c10d Backend object back to FcclBackend, and fused programs.
// Everything that blocks (communicator setup, compilation) runs without the GIL.
#include <pybind11/chrono.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/python.h>

#include "backend.h"
#include "program.h"

namespace py = pybind11;
using fccl_torch::FcclBackend;
using fccl_torch::Program;

namespace {

c10::intrusive_ptr<FcclBackend> asFccl(const c10::intrusive_ptr<c10d::Backend>& backend) {
  TORCH_CHECK(backend.defined(), "fccl: no backend");
  auto* fccl = dynamic_cast<FcclBackend*>(backend.get());
  TORCH_CHECK_TYPE(fccl != nullptr, "fccl: the process group's backend is '", backend->getBackendName(),
                   "', not fccl (create the group with backend=\"fccl\")");
  return c10::intrusive_ptr<FcclBackend>::reclaim_copy(fccl);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fccl's torch.distributed backend and fused programs (C++ part)";

  py::register_exception<fccl_torch::ProgramError>(m, "ProgramError", PyExc_ValueError);

  m.def(
      "fccl_version",
      [] {
        int v = 0;
        fcclGetVersion(&v);
        return v;
      },
      "FCCL_VERSION_CODE of the libfccl this module runs (major*10000 + minor*100 + patch)");

  m.def(
      "create_backend",
      [](const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, std::chrono::milliseconds timeout,
         const std::string& groupName) -> c10::intrusive_ptr<c10d::Backend> {
        return c10::make_intrusive<FcclBackend>(store, rank, size, timeout, groupName);
      },
      py::arg("store"), py::arg("rank"), py::arg("size"), py::arg("timeout"), py::arg("group_name"),
      py::call_guard<py::gil_scoped_release>());

  m.def(
      "is_fccl_backend",
      [](const c10::intrusive_ptr<c10d::Backend>& b) {
        return dynamic_cast<FcclBackend*>(b.get()) != nullptr;
      },
      py::arg("backend"));

  m.def(
      "slice_range",
      [](const c10::intrusive_ptr<c10d::Backend>& b, int rank, size_t count) {
        auto fccl = asFccl(b);
        size_t begin = 0, end = 0;
        fccl->runSync(
            [&] { fccl->check(fcclSliceRange(fccl->comm(), rank, count, &begin, &end), "fcclSliceRange"); });
        return std::make_pair(begin, end);
      },
      py::arg("backend"), py::arg("rank"), py::arg("count"), py::call_guard<py::gil_scoped_release>(),
      "fcclSliceRange: [begin, end) of a sliced tensor of count elements that rank owns");

  m.def(
      "stock_program",
      [](const std::string& name) {
        const char* text = nullptr;
        fcclResult_t r = fcclProgramGetStock(name.c_str(), &text);
        TORCH_CHECK_VALUE(r == fcclSuccess, fcclGetLastError(nullptr));
        return std::string(text);
      },
      py::arg("name"), "The text of a stock program (fcclProgramGetStock)");

  py::class_<Program, std::shared_ptr<Program>>(m, "Program")
      .def(py::init<const std::string&, const std::string&>(), py::arg("text"), py::arg("name"))
      .def(
          "compile",
          [](Program& p, const c10::intrusive_ptr<c10d::Backend>& b, const std::string& schedule) {
            p.compile(asFccl(b), schedule);
          },
          py::arg("backend"), py::arg("schedule"), py::call_guard<py::gil_scoped_release>())
      .def("launch", &Program::launch, py::arg("names"), py::arg("tensors"), py::arg("counts"),
           py::arg("scalar_names"), py::arg("scalar_values"), py::arg("results"),
           py::call_guard<py::gil_scoped_release>())
      .def("dump", &Program::dump, py::arg("stage"), py::call_guard<py::gil_scoped_release>())
      .def("log", &Program::log, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("compiled", &Program::compiled);
}
