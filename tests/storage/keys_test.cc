#include "storage/keys.h"

#include <gtest/gtest.h>

namespace whistle::storage::keys {
namespace {

TEST(KeysTest, HistoryKeysSortBySeq) {
  EXPECT_LT(History("c", 2), History("c", 255));
  EXPECT_LT(History("c", 255), History("c", 256));
  EXPECT_EQ(History("c", 1), std::string("c\0\0\0\0\0\0\0\0\1", 10));
  EXPECT_TRUE(History("c", 7).starts_with(HistoryPrefix("c")));
  EXPECT_FALSE(History("c1", 7).starts_with(HistoryPrefix("c")));
}

TEST(KeysTest, OwnerIndexLayout) {
  std::string k = OwnerIndex("street-1", 3, "n-000000000001");
  EXPECT_EQ(k, std::string("o/street-1\0"
                           "03/n-000000000001",
                           28));
  EXPECT_TRUE(k.starts_with(OwnerPrefix("street-1")));
  EXPECT_TRUE(k.starts_with(OwnerStatePrefix("street-1", 3)));
  EXPECT_FALSE(k.starts_with(OwnerPrefix("street")));
  EXPECT_EQ(CaseIdOfOwnerIndex(k), "n-000000000001");
  EXPECT_EQ(CaseIdOfOwnerIndex("o/x"), "");
}

TEST(KeysTest, TimersSortByDueTime) {
  EXPECT_LT(Timer(200, "z"), Timer(100000, "a"));
  std::string key = Timer(1234567, "n-000000000009");
  auto t = ParseTimer(key);  // views into key
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->due_ms, 1234567);
  EXPECT_EQ(t->case_id, "n-000000000009");
  EXPECT_FALSE(ParseTimer("12/x").has_value());
}

TEST(KeysTest, CountsRoundTrip) {
  std::string key = Count("a/b", 7);
  auto c = ParseCount(key);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->owner, "a/b");
  EXPECT_EQ(c->state, 7);
  EXPECT_FALSE(ParseCount("count/x").has_value());
  EXPECT_FALSE(ParseCount("other/x").has_value());
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, INT64_MAX, INT64_MIN}) {
    EXPECT_EQ(DecodeInt64(EncodeInt64(v)), v);
  }
  EXPECT_EQ(EncodeInt64(1), std::string("\1\0\0\0\0\0\0\0", 8));
  EXPECT_FALSE(DecodeInt64("abc").has_value());
}

TEST(KeysTest, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("ab"), "ac");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff", 1)), "");
  EXPECT_EQ(PrefixEnd(std::string("o/x\0", 4)), std::string("o/x\1", 4));
}

}  // namespace
}  // namespace whistle::storage::keys
