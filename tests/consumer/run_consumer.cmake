# ctest driver (cmake -P) for one way of consuming lowbit; see tests/consumer/CMakeLists.txt.
# In: MODE (fetchcontent | find_package), WORK_DIR, LOWBIT_SOURCE_DIR, CONSUMER_SOURCE_DIR,
#     CXX_COMPILER, GENERATOR, PREFIX_PATH, and for find_package LOWBIT_BINARY_DIR.
cmake_minimum_required(VERSION 3.21)

function(run_step what)
  message(STATUS "consumer[${MODE}]: ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer[${MODE}]: ${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(args -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
         -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
         -DLOWBIT_CONSUMER_MODE=${MODE})

if(MODE STREQUAL "fetchcontent")
  # FETCHCONTENT_FULLY_DISCONNECTED: never try the network (SOURCE_DIR needs none anyway).
  list(APPEND args -DLOWBIT_SOURCE_DIR=${LOWBIT_SOURCE_DIR} -DFETCHCONTENT_FULLY_DISCONNECTED=ON
                   "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}")
elseif(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run_step("install lowbit" ${CMAKE_COMMAND} --install ${LOWBIT_BINARY_DIR} --prefix ${prefix})
  # The installed package must be complete without the source tree.
  foreach(f include/lowbit/lowbit.hpp include/lowbit/gptq.hpp share/cmake/lowbit/lowbitConfig.cmake
            share/cmake/lowbit/lowbitConfigVersion.cmake share/cmake/lowbit/lowbitTargets.cmake)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "consumer[find_package]: install is missing ${f}")
    endif()
  endforeach()
  # Search the temporary prefix first; PREFIX_PATH only for nlohmann_json & co.
  list(APPEND args "-DCMAKE_PREFIX_PATH=${prefix};${PREFIX_PATH}" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
else()
  message(FATAL_ERROR "MODE must be fetchcontent or find_package, not '${MODE}'")
endif()

run_step("configure" ${CMAKE_COMMAND} ${args})
if(MODE STREQUAL "find_package" AND NOT step_output MATCHES "lowbit found at ${prefix}/")
  message(FATAL_ERROR "consumer[find_package]: lowbit was not taken from ${prefix}:\n${step_output}")
endif()
run_step("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("run" ${WORK_DIR}/build/consumer)
message(STATUS "${step_output}")
if(EXISTS ${WORK_DIR}/build/consumer_format)
  run_step("run" ${WORK_DIR}/build/consumer_format)
  message(STATUS "${step_output}")
endif()

# Without nlohmann_json the package must still load and give lowbit::lowbit (lowbit::format absent).
if(MODE STREQUAL "find_package")
  list(TRANSFORM args REPLACE "^${WORK_DIR}/build$" "${WORK_DIR}/build-nojson")
  run_step("configure without nlohmann_json" ${CMAKE_COMMAND} ${args} -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
  run_step("build without nlohmann_json" ${CMAKE_COMMAND} --build ${WORK_DIR}/build-nojson)
  if(EXISTS ${WORK_DIR}/build-nojson/consumer_format)
    message(FATAL_ERROR "consumer[find_package]: lowbit::format was defined without nlohmann_json")
  endif()
  run_step("run without nlohmann_json" ${WORK_DIR}/build-nojson/consumer)
endif()
