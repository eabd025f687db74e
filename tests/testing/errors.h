// Error-message checks shared by the tests: an Error whose message starts with a given prefix.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "perceiver/core/error.h"

namespace perceiver::testing {

// fn() must throw an Error whose message starts with prefix.
template <typename Fn>
void expect_error(const Fn& fn, const std::string& prefix) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error starting with " << prefix;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
  }
}

}  // namespace perceiver::testing
