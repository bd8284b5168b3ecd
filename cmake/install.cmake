# install.cmake - `cmake --install`: the header, libfccl.so* and libfccl.a, the CMake package
# (lib/cmake/fccl: fccl::fccl shared, fccl::fccl_static) and lib/pkgconfig/fccl.pc, the stock
# fused programs (share/fccl/programs/*.fccl) and fcclc, plus the perf tools that exist. Included at the end of the top-level CMakeLists.txt, so every target
# (perf/ included) is already defined when the if(TARGET ...) guards below run.
include(CMakePackageConfigHelpers)

set(FCCL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fccl)

# fccl_objects is not installed or exported: the two libraries take its objects
# ($<TARGET_OBJECTS:>) rather than linking it, so nothing in the export set names it.
install(TARGETS fccl fccl_static
  EXPORT fcclTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/fccl.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT fcclTargets NAMESPACE fccl:: FILE fcclTargets.cmake DESTINATION ${FCCL_CMAKE_DIR})

# Whether the static library needs hwloc at link time (fcclConfig.cmake recreates
# PkgConfig::HWLOC for it; fccl.pc lists it in Requires.private).
if(HWLOC_FOUND)
  set(FCCL_WITH_HWLOC ON)
  set(FCCL_PC_REQUIRES_PRIVATE "hwloc")
else()
  set(FCCL_WITH_HWLOC OFF)
  set(FCCL_PC_REQUIRES_PRIVATE "")
endif()
# The same for UCX (transports/ucx), when it was built.
if(UCX_FOUND)
  set(FCCL_WITH_UCX ON)
  string(APPEND FCCL_PC_REQUIRES_PRIVATE " ucx")
else()
  set(FCCL_WITH_UCX OFF)
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/fcclConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fcclConfig.cmake
  INSTALL_DESTINATION ${FCCL_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fcclConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fcclConfig.cmake ${PROJECT_BINARY_DIR}/fcclConfigVersion.cmake
  DESTINATION ${FCCL_CMAKE_DIR})

# pkg-config. The prefix is relative to the .pc file, so a relocated install keeps working.
# (`cmake --install --prefix P` changes the prefix after configure time, so it cannot be baked in.)
file(RELATIVE_PATH FCCL_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" FCCL_PC_TO_PREFIX "${FCCL_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/fccl.pc.in ${PROJECT_BINARY_DIR}/fccl.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fccl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Perf tools, where perf/ defines them. They find libfccl.so next to bin/ through RUNPATH.
set(FCCL_PERF_TOOLS all_reduce_perf reduce_scatter_perf all_gather_perf broadcast_perf reduce_perf
  alltoall_perf sendrecv_perf fused_perf mpi_perf membw)
foreach(tool IN LISTS FCCL_PERF_TOOLS)
  if(TARGET ${tool})
    get_target_property(rpath ${tool} INSTALL_RPATH)
    if(NOT rpath)
      set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    endif()
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The stock programs (fusion/stock: part of the product; the library also carries them, see
# fcclProgramGetStock) and fcclc, the fusion compiler's driver (`fcclc adam` finds one by name).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/fusion/stock/ DESTINATION ${CMAKE_INSTALL_DATADIR}/fccl/programs
  FILES_MATCHING PATTERN "*.fccl")
if(TARGET fcclc)
  # fcclc links the compiler's objects statically; keep the link path (e.g. NVRTC's folder).
  set_target_properties(fcclc PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
  install(TARGETS fcclc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# fcclrun, the launcher for users without MPI (tools/fcclrun.cc).
if(TARGET fcclrun)
  install(TARGETS fcclrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
