// CAF's test DSL (caf/test/dsl.hpp) reads its arguments and reports through
// CAF's unit-test engine; this defines that engine once, without its main():
// GoogleTest runs the tests.
#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test_impl.hpp>
