#include "core/text.h"

#include <gtest/gtest.h>

namespace whistle::core {
namespace {

TEST(Text, Utf8) {
  EXPECT_TRUE(IsValidUtf8("Müller 石嘴山"));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("M\xFCller"));         // Latin-1
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE7\x9F"));          // cut short
}

TEST(Text, CheckTextRefusesControlAndBadBytes) {
  EXPECT_TRUE(CheckText("note", "line one\nline\ttwo", 100).ok());
  Status s = CheckText("note", "bell\x07", 100);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("note:"), std::string::npos);
  EXPECT_FALSE(CheckText("note", "M\xFCller", 100).ok());
  EXPECT_FALSE(CheckText("note", std::string(101, 'a'), 100).ok());
  // C1 controls and the bidirectional overrides that reorder what a screen
  // shows around them (U+0085, U+202E, U+2066); ordinary text around them passes.
  EXPECT_FALSE(CheckText("note",
                         "a\xC2\x85"
                         "b",
                         100)
                   .ok());
  s = CheckText("address",
                "5\xE5\x8F\xB7\xE6\xA5\xBC\xE2\x80\xAE"
                "evil",
                100);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("address: bidirectional"), std::string::npos) << s.message();
  EXPECT_FALSE(CheckText("note", "x\xE2\x81\xA6y", 100).ok());
  EXPECT_FALSE(CheckText("note", "x\xE2\x80\xAAy", 100).ok());
  EXPECT_TRUE(CheckText("note", "\xC2\xA0\xE2\x80\x94\xE2\x80\xA6\xE2\x81\xB0", 100).ok());
}

TEST(Text, CheckIdCharset) {
  EXPECT_TRUE(CheckId("user", "gw-01.dawukou@x:y_z", 128).ok());
  EXPECT_FALSE(CheckId("user", "", 128).ok());
  EXPECT_FALSE(CheckId("user", "has space", 128).ok());
  EXPECT_FALSE(CheckId("user", "M\xFCller", 128).ok());
  EXPECT_FALSE(CheckId("user", std::string(129, 'a'), 128).ok());
}

TEST(Text, QuoteIsShortAndEscaped) {
  EXPECT_EQ(Quote("abc"), "\"abc\"");
  EXPECT_EQ(Quote("M\xFCller"), "\"M\\xFCller\"");
  std::string q = Quote(std::string(100000, 'x'));
  EXPECT_LT(q.size(), 48u);
  EXPECT_NE(q.find("…"), std::string::npos);
  // never cuts a multi-byte character in half
  std::string cn;
  for (int i = 0; i < 20; ++i) cn += "石";
  EXPECT_TRUE(IsValidUtf8(Quote(cn)));
}

}  // namespace
}  // namespace whistle::core
