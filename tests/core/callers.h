// Builds callers for state-machine tests: departments act through their
// department id, everyone else through a jurisdiction.
#pragma once

#include <string>

#include "whistle/v1/common.pb.h"

namespace whistle::testing {

inline v1::Caller MakeCaller(const std::string& user, v1::Role role, const std::string& where) {
  v1::Caller c;
  c.set_user(user);
  c.set_role(role);
  if (role == v1::ROLE_DEPARTMENT) {
    c.set_department_id(where);
  } else {
    c.set_jurisdiction_id(where);
  }
  return c;
}

}  // namespace whistle::testing
