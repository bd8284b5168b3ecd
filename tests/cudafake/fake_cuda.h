// fake_cuda.h - what the stand-in driver (fake_cuda.cc) counts, for its tests: read through
// fake_cuda_counter(int), looked up in the loaded libcuda.so.1.
#pragma once

namespace fakecuda {

enum Counter {
  kVmmCreate,  // cuMemCreate
  kVmmExport,  // cuMemExportToShareableHandle
  kVmmImport,  // cuMemImportFromShareableHandle
  kIpcGet,     // cuIpcGetMemHandle
  kIpcOpen,    // cuIpcOpenMemHandle
  kLive,       // allocations, mappings and handles not yet released
  kCounters
};

}  // namespace fakecuda
