// The one translation unit that compiles Boost.JSON (header-only mode) for
// the test-support library. No other .cpp linked with tumbled_test_support
// may include <boost/json/src.hpp>, or the link sees duplicate symbols.
#include <boost/json/src.hpp>
