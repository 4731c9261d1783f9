# tests/cuda_emu/emulate.cmake — the CUDA backend built for the CPU emulator
# (JIT_CUDA=EMU): every kernels/cuda/*.cu is preprocessed as C++ against the
# emulator's headers (include/), rewritten by transform.py, and compiled with
# ThreadSanitizer instrumentation (whose hooks the emulator serves: memory
# checks and the shared-memory race detector); the host code above it (core,
# train, dist) compiles unchanged with JIT_HAVE_CUDA against the emulated
# runtime, cuBLASLt and NCCL. Included by the top-level CMakeLists.txt after
# the layer libraries are defined.
enable_language(CXX)
set(EMU_DIR ${CMAKE_SOURCE_DIR}/tests/cuda_emu)
set(EMU_GEN ${CMAKE_BINARY_DIR}/cuda_emu)
file(MAKE_DIRECTORY ${EMU_GEN})

find_package(Python3 REQUIRED COMPONENTS Interpreter)

# The emulator's runtime: not instrumented (its own accesses are not the kernels').
add_library(jit_cuda_emu STATIC ${EMU_DIR}/emu_rt.cc ${EMU_DIR}/emu_api.cc ${EMU_DIR}/emu_hazard.cc ${EMU_DIR}/emu_lt.cc
  ${EMU_DIR}/emu_nccl.cc ${EMU_DIR}/emu_tc.cc)
target_include_directories(jit_cuda_emu PUBLIC ${EMU_DIR}/include PRIVATE ${EMU_DIR} ${JIT_CBLAS_INCLUDE})
target_compile_options(jit_cuda_emu PRIVATE -O2 -g -fno-sanitize=all -Wall -Wno-unused-parameter)
target_compile_features(jit_cuda_emu PRIVATE cxx_std_17)
target_link_libraries(jit_cuda_emu PUBLIC ${JIT_BLAS_LIB} MPI::MPI_C ${CMAKE_DL_LIBS})

# kernels/cuda/*.cu -> preprocessed (.ii) -> transformed (.cc) -> instrumented object.
file(GLOB JIT_CUDA_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
file(GLOB EMU_HEADER_DEPS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cuh ${CMAKE_SOURCE_DIR}/kernels/cuda/*.h
  ${CMAKE_SOURCE_DIR}/kernels/*.h ${CMAKE_SOURCE_DIR}/core/*.h ${EMU_DIR}/include/*.h ${EMU_DIR}/*.h)
# emu_cuda(OUT_VAR file.cu...): the generated, instrumented C++ sources.
function(emu_cuda out_var)
  set(out)
  foreach(cu ${ARGN})
    get_filename_component(name ${cu} NAME_WE)
    set(ii ${EMU_GEN}/${name}.ii)
    set(cc ${EMU_GEN}/${name}.cc)
    add_custom_command(OUTPUT ${cc}
      COMMAND ${CMAKE_CXX_COMPILER} -E -std=c++17 -x c++ -DJIT_HAVE_CUDA=1 -DJIT_CUDA_EMU=1
              -I${EMU_DIR}/include -I${CMAKE_SOURCE_DIR} -I${JIT_CBLAS_INCLUDE} -include emu_device.h ${cu} -o ${ii}
      COMMAND Python3::Interpreter ${EMU_DIR}/transform.py ${ii} ${cc}
      DEPENDS ${cu} ${EMU_HEADER_DEPS} ${EMU_DIR}/transform.py
      COMMENT "Emulating ${name}.cu"
      VERBATIM)
    list(APPEND out ${cc})
  endforeach()
  # fmaf as an instruction, not a libm call (same rounding: fused, exact).
  set(march)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND JIT_MARCH)
    set(march "-march=${JIT_MARCH}")
  endif()
  # -fno-tree-sra: a float4 or uint4 load or store stays one 16-byte access (GCC would split it into
  # four 4-byte ones), so the hooks see its size and check its alignment as the GPU does (no measurable
  # cost: test_cuda_attn 38.7 s of CPU either way).
  set_source_files_properties(${out} PROPERTIES
    COMPILE_OPTIONS "-fpreprocessed;-fsanitize=thread;-O1;-fno-tree-sra;-g;-fno-omit-frame-pointer;-ffp-contract=off;-w;${march}")
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()

emu_cuda(EMU_KERNEL_CC ${JIT_CUDA_SRC})
# The host-side C files of the backend (its Backend, device memory) as they are.
file(GLOB JIT_CUDA_C_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.c)
target_sources(jit_kernels PRIVATE ${EMU_KERNEL_CC} ${JIT_CUDA_C_SRC})

# The detectors, each on a deliberately broken kernel and its fix.
emu_cuda(EMU_DETECT_CC ${EMU_DIR}/emu_detect.cu)
add_executable(emu_detect ${EMU_DETECT_CC})
target_link_libraries(emu_detect PRIVATE jitcore)
# Streams ordered only by events: a missing cudaStreamWaitEvent fails on every seed.
emu_cuda(EMU_STREAMS_CC ${EMU_DIR}/emu_streams.cu)
add_executable(emu_streams ${EMU_STREAMS_CC} ${EMU_DIR}/emu_streams_nccl.cc)
target_include_directories(emu_streams PRIVATE ${EMU_DIR})
target_link_libraries(emu_streams PRIVATE jitcore)

# The warp-level matrix instructions (tc.cuh): products against a reference, and their detectors.
emu_cuda(EMU_TC_TEST_CC ${EMU_DIR}/emu_tc_test.cu)
add_executable(emu_tc_test ${EMU_TC_TEST_CC})
target_link_libraries(emu_tc_test PRIVATE jitcore)
target_compile_definitions(jit_kernels PUBLIC JIT_HAVE_CUDA=1 JIT_CUDA_EMU=1)
target_link_libraries(jit_kernels PUBLIC jit_cuda_emu)
target_link_libraries(jit_dist PUBLIC jit_cuda_emu) # NCCL's stand-in, for dist/comm_nccl.c
