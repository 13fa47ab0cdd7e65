# One bounded libFuzzer run over a seed corpus, as a ctest test:
#   cmake -DFUZZER=<program> -DSEEDS=<seed folder> -DWORK=<scratch folder> -DSECONDS=<n> -P run_fuzz.cmake
# New inputs go to WORK (emptied first), never to the seed corpus in the source tree; a crash,
# leak, timeout or out-of-memory input goes to WORK/../<name>-crash-... and fails the test.
foreach(v FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzz.cmake: ${v} is not set")
  endif()
endforeach()
if(NOT IS_DIRECTORY "${SEEDS}")
  message(FATAL_ERROR "no seed corpus at ${SEEDS}")
endif()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
get_filename_component(name "${WORK}" NAME)
get_filename_component(parent "${WORK}" DIRECTORY)

# A fixed seed: every run of the test command walks the same sequence of inputs (as far as the
# machine gets in the time), so a failure in CI is reproducible; searching with fresh seeds is
# for long runs by hand (README, "Fuzzing").
execute_process(
  COMMAND "${FUZZER}"
    -seed=1 -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
    -max_len=65536 -print_final_stats=1
    -artifact_prefix=${parent}/${name}-
    "${WORK}" "${SEEDS}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} found a problem (exit ${rc}); the input is in ${parent}/${name}-*")
endif()
