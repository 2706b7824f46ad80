// Input at the door: every string field of a report, a command and a caller
// is checked (UTF-8, control characters, id charset, length) before anything
// can store it, errors name the field and quote at most a short prefix, and
// the report fingerprint behind idempotency.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/case_machine.h"
#include "core/text.h"
#include "tests/core/callers.h"

namespace whistle::core {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using testing::MakeCaller;
using namespace std::string_literals;

constexpr char kGrid[] = "dwk-s01-c03-g002";
constexpr char kPolice[] = "dwk-s01-police_station";
const std::string kLatin1 = "M\xfcller";  // "Müller" in Latin-1: not UTF-8
const std::string kHuge(100 * 1024, 'x');
constexpr char kPinnedFingerprint[] = "v1:3752d5a2ef36a40d";
// What an error message may grow by when it quotes caller input.
constexpr size_t kMaxMessage = 300;

class InputTest : public ::testing::Test {
 protected:
  InputTest()
      : topology_(*Topology::Build(ShizuishanTopology())),
        policy_(*Policy::Build(DefaultPolicy())),
        ctx_{*topology_, *policy_} {}

  static v1::ReportCommand GoodReport() {
    v1::ReportCommand r;
    r.set_request_id("req-1");
    r.set_category("dispute.neighbour");
    r.set_severity(v1::SEVERITY_GENERAL);
    r.mutable_place()->set_grid_id(kGrid);
    r.mutable_place()->set_address("长胜街道 3 号楼");
    r.mutable_place()->set_latitude(39.0);
    r.mutable_place()->set_longitude(106.4);
    r.set_text("楼上漏水, 邻里争吵");
    auto* a = r.add_attachments();
    a->set_uri("s3://photos/1.jpg");
    a->set_media_type("image/jpeg");
    return r;
  }
  static v1::Caller Worker() { return MakeCaller("wang.grid", v1::ROLE_GRID_WORKER, kGrid); }
  static v1::Caller Staff() { return MakeCaller("li.community", v1::ROLE_STAFF, "dwk-s01-c03"); }

  std::shared_ptr<const Topology> topology_;
  std::shared_ptr<const Policy> policy_;
  Context ctx_;
};

// Every string field of a report, by path, and how to spoil it.
struct ReportField {
  std::string path;  // as the error names it
  std::function<void(v1::ReportCommand&, const std::string&)> set;
};

std::vector<ReportField> ReportFields() {
  return {
      {"report.request_id", [](auto& r, const auto& v) { r.set_request_id(v); }},
      {"report.category", [](auto& r, const auto& v) { r.set_category(v); }},
      {"report.place.grid_id", [](auto& r, const auto& v) { r.mutable_place()->set_grid_id(v); }},
      {"report.place.address", [](auto& r, const auto& v) { r.mutable_place()->set_address(v); }},
      {"report.text", [](auto& r, const auto& v) { r.set_text(v); }},
      {"report.attachments[0].uri",
       [](auto& r, const auto& v) { r.mutable_attachments(0)->set_uri(v); }},
      {"report.attachments[0].media_type",
       [](auto& r, const auto& v) { r.mutable_attachments(0)->set_media_type(v); }},
  };
}

// Every string field (recursively) of `d`, as "a.b.c" from `prefix`.
void StringFields(const Descriptor* d, const std::string& prefix, std::set<std::string>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->type() == FieldDescriptor::TYPE_STRING) out->insert(prefix + f->name());
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      StringFields(f->message_type(), prefix + f->name() + ".", out);
    }
  }
}

TEST_F(InputTest, TheReportTableCoversEveryStringField) {
  std::set<std::string> want;
  StringFields(v1::ReportCommand::descriptor(), "report.", &want);
  std::set<std::string> have;
  for (const auto& f : ReportFields()) {
    std::string p = f.path;
    p.erase(std::remove(p.begin(), p.end(), '0'), p.end());
    for (auto pos = p.find("[]"); pos != std::string::npos; pos = p.find("[]")) p.erase(pos, 2);
    have.insert(p);
  }
  EXPECT_EQ(have, want) << "a string field of ReportCommand is not covered by this test";
}

TEST_F(InputTest, EveryReportStringFieldRefusesBadBytesAndNamesTheField) {
  ASSERT_TRUE(CheckReport(Worker(), GoodReport(), ctx_).ok());
  const std::vector<std::string> bad = {kLatin1,
                                        "\xc3\x28",
                                        "\xed\xa0\x80" /* surrogate */,
                                        "\xc0\xaf" /* overlong */,
                                        "a\x01"
                                        "b",
                                        "\x7f"};
  for (const auto& field : ReportFields()) {
    for (const auto& value : bad) {
      v1::ReportCommand r = GoodReport();
      field.set(r, value);
      auto checked = CheckReport(Worker(), r, ctx_);
      ASSERT_FALSE(checked.ok()) << field.path << " took " << ::testing::PrintToString(value);
      EXPECT_EQ(checked.status().code(), Code::kInvalidArgument) << checked.status().ToString();
      EXPECT_NE(checked.status().message().find(field.path), std::string::npos)
          << checked.status().message();
      EXPECT_TRUE(IsValidUtf8(checked.status().message())) << field.path;
    }
  }
}

TEST_F(InputTest, OversizedReportFieldsAreRefusedWithAShortMessage) {
  for (const auto& field : ReportFields()) {
    v1::ReportCommand r = GoodReport();
    field.set(r, kHuge);
    auto checked = CheckReport(Worker(), r, ctx_);
    ASSERT_FALSE(checked.ok()) << field.path;
    EXPECT_EQ(checked.status().code(), Code::kInvalidArgument) << field.path;
    EXPECT_NE(checked.status().message().find(field.path), std::string::npos)
        << checked.status().message();
    EXPECT_LT(checked.status().message().size(), kMaxMessage) << field.path;
  }
}

TEST_F(InputTest, RequestIdsAreIds) {
  for (const std::string id : {"with space"s, "slash/inside"s, "nul\0in"s, "ünïcode"s}) {
    v1::ReportCommand r = GoodReport();
    r.set_request_id(id);
    auto checked = CheckReport(Worker(), r, ctx_);
    ASSERT_FALSE(checked.ok()) << id;
    EXPECT_NE(checked.status().message().find("report.request_id"), std::string::npos);
  }
}

// ---- Commands ----

// A well-formed command of `kind` (the oneof field's name).
v1::Command GoodCommand(const std::string& kind) {
  v1::Command c;
  const FieldDescriptor* f = v1::Command::descriptor()->FindFieldByName(kind);
  c.GetReflection()->MutableMessage(&c, f);
  if (kind == "dispatch") c.mutable_dispatch()->set_department_id(kPolice);
  if (kind == "whistle") c.mutable_whistle()->add_department_ids(kPolice);
  if (kind == "escalate") c.mutable_escalate()->set_reason("needs the street");
  if (kind == "return_case") c.mutable_return_case()->set_reason("misrouted");
  if (kind == "reject") c.mutable_reject()->set_reason("not ours");
  if (kind == "evaluate") c.mutable_evaluate()->set_score(4);
  if (kind == "transfer") {
    c.mutable_transfer()->set_to_jurisdiction_id("dwk-s01-c04");
    c.mutable_transfer()->set_category("dispute.family");
    c.mutable_transfer()->set_reason("misrouted");
  }
  if (kind == "refuse") c.mutable_refuse()->set_reason("not ours");
  return c;
}

// Sets string field `field` of the `kind` sub-message (the first element of a repeated one).
void SetField(v1::Command& c, const std::string& kind, const FieldDescriptor* field,
              const std::string& value) {
  const FieldDescriptor* k = v1::Command::descriptor()->FindFieldByName(kind);
  google::protobuf::Message* sub = c.GetReflection()->MutableMessage(&c, k);
  const auto* refl = sub->GetReflection();
  if (field->is_repeated()) {
    if (refl->FieldSize(*sub, field) == 0) {
      refl->AddString(sub, field, value);
    } else {
      refl->SetRepeatedString(sub, field, 0, value);
    }
  } else {
    refl->SetString(sub, field, value);
  }
}

TEST_F(InputTest, EveryCommandStringFieldRefusesBadBytesAndOversizeAndNamesTheField) {
  const Descriptor* command = v1::Command::descriptor();
  int covered = 0;
  for (int i = 0; i < command->field_count(); ++i) {
    const FieldDescriptor* kind = command->field(i);
    if (kind->name() == "report") continue;  // reports: above
    ASSERT_TRUE(CheckCommand(Staff(), GoodCommand(kind->name()), ctx_).ok()) << kind->name();
    const Descriptor* sub = kind->message_type();
    for (int j = 0; j < sub->field_count(); ++j) {
      const FieldDescriptor* field = sub->field(j);
      if (field->type() != FieldDescriptor::TYPE_STRING) continue;
      const std::string path = "command." + kind->name() + "." + field->name();
      for (const std::string& value : {kLatin1, std::string("a\x01"), kHuge}) {
        v1::Command c = GoodCommand(kind->name());
        SetField(c, kind->name(), field, value);
        auto checked = CheckCommand(Staff(), c, ctx_);
        ASSERT_FALSE(checked.ok()) << path << " took a bad value";
        EXPECT_EQ(checked.status().code(), Code::kInvalidArgument) << checked.status().ToString();
        EXPECT_NE(checked.status().message().find(path), std::string::npos)
            << checked.status().message();
        EXPECT_LT(checked.status().message().size(), kMaxMessage) << path;
      }
      ++covered;
    }
  }
  EXPECT_GE(covered, 15);  // notes, reasons, department ids, the overdue deadline
}

TEST_F(InputTest, OverdueDeadlineNameIsCheckedOnTheNodesOwnPathToo) {
  v1::Case c;
  c.set_id("szs-000000000001");
  c.set_state(v1::CASE_STATE_REPORTED);
  c.set_owner_id("dwk-s01-c03");
  c.mutable_deadlines()->set_accept_by_ms(1);
  v1::OverdueCommand overdue;
  overdue.set_deadline(kLatin1);
  auto t = ApplyOverdue(c, overdue, 10, ctx_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
}

// ---- Callers ----

TEST_F(InputTest, CallerFieldsAreIds) {
  struct Bad {
    v1::Caller caller;
    std::string field;
  };
  v1::Caller latin_user = Worker();
  latin_user.set_user(kLatin1);
  v1::Caller spaced_user = Worker();
  spaced_user.set_user("wang grid");
  v1::Caller huge_user = Worker();
  huge_user.set_user(kHuge);
  v1::Caller latin_jurisdiction = Worker();
  latin_jurisdiction.set_jurisdiction_id(kLatin1);
  v1::Caller stray_department = Worker();  // not used by the role, but stored with the caller
  stray_department.set_department_id(kLatin1);
  v1::Caller desk = MakeCaller("desk", v1::ROLE_DEPARTMENT, kPolice);
  v1::Caller desk_latin_jurisdiction = desk;
  desk_latin_jurisdiction.set_jurisdiction_id(kLatin1);
  v1::Caller desk_latin_department = desk;
  desk_latin_department.set_department_id(kLatin1);
  for (const auto& bad : std::vector<Bad>{{latin_user, "caller.user"},
                                          {spaced_user, "caller.user"},
                                          {huge_user, "caller.user"},
                                          {latin_jurisdiction, "caller.jurisdiction_id"},
                                          {stray_department, "caller.department_id"},
                                          {desk_latin_jurisdiction, "caller.jurisdiction_id"},
                                          {desk_latin_department, "caller.department_id"}}) {
    auto checked = CheckCaller(bad.caller, ctx_);
    ASSERT_FALSE(checked.ok()) << bad.field;
    EXPECT_EQ(checked.status().code(), Code::kInvalidArgument) << checked.status().ToString();
    EXPECT_NE(checked.status().message().find(bad.field), std::string::npos)
        << checked.status().message();
    EXPECT_LT(checked.status().message().size(), kMaxMessage) << bad.field;
  }
  EXPECT_TRUE(CheckCaller(desk, ctx_).ok());
}

TEST_F(InputTest, WhatPassesTheDoorIsStorable) {
  // A checked report becomes a case and a history entry that read back.
  auto checked = CheckReport(Worker(), GoodReport(), ctx_);
  ASSERT_TRUE(checked.ok());
  auto t = Report(*checked, "szs-000000000001", 1, ctx_);
  ASSERT_TRUE(t.ok());
  v1::Case back;
  EXPECT_TRUE(back.ParseFromString(t->next.SerializeAsString()));
  v1::HistoryEntry entry;
  EXPECT_TRUE(entry.ParseFromString(t->entry.SerializeAsString()));
}

TEST_F(InputTest, UnknownFieldsAreNotKept) {
  v1::ReportCommand r = GoodReport();
  r.mutable_place()
      ->GetReflection()
      ->MutableUnknownFields(r.mutable_place())
      ->AddLengthDelimited(99, kLatin1);
  auto checked = CheckReport(Worker(), r, ctx_);
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(checked->report()
                  .place()
                  .GetReflection()
                  ->GetUnknownFields(checked->report().place())
                  .empty());
}

// ---- Report fingerprint ----

TEST_F(InputTest, FingerprintIsStableAndSeesEveryField) {
  const v1::ReportCommand base = GoodReport();
  const std::string fp = ReportFingerprint(base);
  EXPECT_EQ(fp.substr(0, 3), "v1:");
  EXPECT_EQ(fp.size(), 19u);
  EXPECT_EQ(ReportFingerprint(GoodReport()), fp);
  // Pinned: the fingerprint is stored with every case, so it must not change
  // between builds (a changed encoding needs a new "v2:" prefix).
  EXPECT_EQ(fp, kPinnedFingerprint);
  std::vector<std::function<void(v1::ReportCommand&)>> changes = {
      [](auto& r) { r.set_request_id("req-2"); },
      [](auto& r) { r.set_category("dispute.labour"); },
      [](auto& r) { r.set_severity(v1::SEVERITY_SERIOUS); },
      [](auto& r) { r.mutable_place()->set_grid_id("dwk-s01-c03-g001"); },
      [](auto& r) { r.mutable_place()->set_address("x"); },
      [](auto& r) { r.mutable_place()->set_latitude(39.5); },
      [](auto& r) { r.mutable_place()->set_longitude(106.5); },
      [](auto& r) { r.set_text("other"); },
      [](auto& r) { r.mutable_attachments(0)->set_uri("s3://photos/2.jpg"); },
      [](auto& r) { r.mutable_attachments(0)->set_media_type("image/png"); },
      [](auto& r) { r.add_attachments(); },
      // Moving bytes between adjacent fields changes it too (length-prefixed).
      [](auto& r) {
        r.set_text(r.text() + r.attachments(0).uri().substr(0, 1));
        r.mutable_attachments(0)->set_uri(r.attachments(0).uri().substr(1));
      },
  };
  std::set<std::string> seen = {fp};
  for (size_t i = 0; i < changes.size(); ++i) {
    v1::ReportCommand r = base;
    changes[i](r);
    EXPECT_TRUE(seen.insert(ReportFingerprint(r)).second) << "change " << i;
  }
}

}  // namespace
}  // namespace whistle::core
