// Kinde's JS SDKs against claimflow, unchanged: @kinde/management-api-js with M2M credentials
// and @kinde/js-utils' Account API helpers with a signed-in user's tokens.
//
// Input (environment): KINDE_DOMAIN, KINDE_MANAGEMENT_CLIENT_ID, KINDE_MANAGEMENT_CLIENT_SECRET
// (read by management-api-js itself), USER_ACCESS_TOKEN, USER_ID_TOKEN, USER_EMAIL, ORG_CODE,
// CUSTOMER_ID, WEBHOOK_ENDPOINT. Output (stdout): one JSON object, {calls: [{name, ok, value |
// error}]}, so the Python test asserts on every call and names the one that failed.
import {
  init,
  BillingAgreements,
  BillingEntitlements,
  FeatureFlags,
  Organizations,
  Permissions,
  Properties,
  Roles,
  Users,
  Webhooks,
} from "@kinde/management-api-js";
import {
  MemoryStorage,
  StorageKeys,
  setActiveStorage,
  getCurrentOrganization,
  getEntitlement,
  getEntitlements,
  getFlag,
  hasFeatureFlags,
  getPermission,
  getPermissions,
  getRoles,
  getUserProfile,
} from "@kinde/js-utils";

const env = process.env;
const calls = [];

async function call(name, run) {
  try {
    const value = await run();
    calls.push({ name, ok: true, value: value ?? null });
    return value;
  } catch (error) {
    const body = error?.body === undefined ? undefined : error.body;
    calls.push({ name, ok: false, error: String(error?.message ?? error), body });
    return undefined;
  }
}

async function managementApi() {
  init();
  const org = env.ORG_CODE;
  await call("getOrganization", () => Organizations.getOrganization({ code: org, expand: "billing" }));
  const members = await call("getOrganizationUsers", () =>
    Organizations.getOrganizationUsers({ orgCode: org }),
  );
  const userId = members?.organization_users?.find((u) => u.email === env.USER_EMAIL)?.id;
  await call("getRoles", () => Roles.getRoles());
  await call("getPermissions", () => Permissions.getPermissions());
  await call("createPermission", () =>
    Permissions.createPermission({ requestBody: { key: "export:reports", name: "Export reports" } }),
  );
  const permissions = await Permissions.getPermissions();
  const permissionId = permissions.permissions.find((p) => p.key === "export:reports").id;
  const role = await call("createRole", () =>
    Roles.createRole({ requestBody: { key: "auditor", name: "Auditor" } }),
  );
  const roleId = role?.role?.id;
  await call("updateRolePermissions", () =>
    Roles.updateRolePermissions({ roleId, requestBody: { permissions: [{ id: permissionId }] } }),
  );
  await call("getRolePermissions", () => Roles.getRolePermissions({ roleId }));
  await call("createOrganizationUserRole", () =>
    Organizations.createOrganizationUserRole({ orgCode: org, userId, requestBody: { role_id: roleId } }),
  );
  await call("getOrganizationUserRoles", () =>
    Organizations.getOrganizationUserRoles({ orgCode: org, userId }),
  );
  await call("getOrganizationUserPermissions", () =>
    Organizations.getOrganizationUserPermissions({ orgCode: org, userId }),
  );
  await call("deleteOrganizationUserRole", () =>
    Organizations.deleteOrganizationUserRole({ orgCode: org, userId, roleId }),
  );
  await call("createOrganizationUserPermission", () =>
    Organizations.createOrganizationUserPermission({
      orgCode: org,
      userId,
      requestBody: { permission_id: permissionId },
    }),
  );
  await call("deleteOrganizationUserPermission", () =>
    Organizations.deleteOrganizationUserPermission({ orgCode: org, userId, permissionId }),
  );
  await call("getBillingEntitlements", () =>
    BillingEntitlements.getBillingEntitlements({ customerId: env.CUSTOMER_ID, expand: "plans" }),
  );
  await call("getBillingAgreements", () =>
    BillingAgreements.getBillingAgreements({ customerId: env.CUSTOMER_ID }),
  );
  await call("getEventTypes", () => Webhooks.getEventTypes());
  const hook = await call("createWebHook", () =>
    Webhooks.createWebHook({
      requestBody: {
        name: "JS SDK check",
        endpoint: env.WEBHOOK_ENDPOINT,
        event_types: ["organization.updated", "user.updated"],
      },
    }),
  );
  const webhookId = hook?.webhook?.id;
  await call("getWebHooks", () => Webhooks.getWebHooks());
  await call("updateWebHook", () =>
    Webhooks.updateWebHook({ webhookId, requestBody: { name: "JS SDK check (renamed)" } }),
  );
  await call("deleteWebHook", () => Webhooks.deleteWebHook({ webhookId }));
  await call("deleteRole", () => Roles.deleteRole({ roleId }));
  await call("deletePermission", () => Permissions.deletePermission({ permissionId }));
  await flagsAndProperties(org, userId);
}

// Kinde's feature flags and properties. `js_sdk_limit` is left in place, overridden for the
// organization, so the Account API check below sees it through the API (the user's token was
// issued before it existed).
async function flagsAndProperties(org, userId) {
  await call("createFeatureFlag", () =>
    FeatureFlags.createFeatureFlag({
      requestBody: {
        name: "JS SDK limit",
        key: "js_sdk_limit",
        type: "int",
        allow_override_level: "org",
        default_value: "5",
      },
    }),
  );
  await call("updateFeatureFlag", () =>
    FeatureFlags.updateFeatureFlag({
      featureFlagKey: "js_sdk_limit",
      name: "JS SDK limit",
      description: "Replaced by the JS SDK",
      type: "int",
      allowOverrideLevel: "org",
      defaultValue: "6",
    }),
  );
  await call("updateOrganizationFeatureFlagOverride", () =>
    Organizations.updateOrganizationFeatureFlagOverride({
      orgCode: org,
      featureFlagKey: "js_sdk_limit",
      value: "12",
    }),
  );
  await call("getOrganizationFeatureFlags", () =>
    Organizations.getOrganizationFeatureFlags({ orgCode: org }),
  );
  await call("createFeatureFlag(doomed)", () =>
    FeatureFlags.createFeatureFlag({
      requestBody: { name: "Doomed", key: "js_sdk_doomed", type: "bool", default_value: "false" },
    }),
  );
  await call("deleteOrganizationFeatureFlagOverride", () =>
    Organizations.deleteOrganizationFeatureFlagOverride({ orgCode: org, featureFlagKey: "theme" }),
  );
  await call("updateUserFeatureFlagOverride", () =>
    Users.updateUserFeatureFlagOverride({ userId, featureFlagKey: "new_reports", value: "true" }),
  );
  await call("deleteFeatureFlag", () => FeatureFlags.deleteFeatureFlag({ featureFlagKey: "js_sdk_doomed" }));
  await call("createProperty", () =>
    Properties.createProperty({
      requestBody: {
        name: "Favourite colour",
        key: "favourite_colour",
        type: "single_line_text",
        context: "usr",
        is_private: false,
        category_id: "cat_profile",
      },
    }),
  );
  await call("getProperties", () => Properties.getProperties({ context: "usr" }));
  await call("updateUserProperty", () =>
    Users.updateUserProperty({ userId, propertyKey: "favourite_colour", value: "teal" }),
  );
  await call("updateUserProperties", () =>
    Users.updateUserProperties({ userId, requestBody: { properties: { town: "Shelbyville" } } }),
  );
  await call("getUserPropertyValues", () => Users.getUserPropertyValues({ userId }));
  await call("updateOrganizationProperty", () =>
    Organizations.updateOrganizationProperty({ orgCode: org, propertyKey: "industry", value: "Rockets" }),
  );
  await call("getOrganizationPropertyValues", () =>
    Organizations.getOrganizationPropertyValues({ orgCode: org }),
  );
}

async function accountApi() {
  const storage = new MemoryStorage();
  setActiveStorage(storage);
  await storage.setSessionItem(StorageKeys.accessToken, env.USER_ACCESS_TOKEN);
  await storage.setSessionItem(StorageKeys.idToken, env.USER_ID_TOKEN);
  // The Account API's origin is the access token's `iss`: claimflow's issuer.
  await call("getEntitlements", () => getEntitlements());
  await call("getEntitlement", () => getEntitlement("seats"));
  await call("getPermissions(forceApi)", () => getPermissions({ forceApi: true }));
  await call("getRoles(forceApi)", () => getRoles({ forceApi: true }));
  await call("getPermission", () => getPermission("write:reports"));
  await call("getPermission(forceApi)", () => getPermission("write:reports", { forceApi: true }));
  await call("getPermission(forceApi, not held)", () =>
    getPermission("manage:sso", { forceApi: true }),
  );
  // Flags from the token's `feature_flags` claim (as issued at sign-in) ...
  await call("getFlag(theme)", () => getFlag("theme"));
  await call("getFlag(new_reports)", () => getFlag("new_reports"));
  await call("getFlag(missing)", () => getFlag("no_such_flag"));
  // ... and from the Account API, current: a flag created after sign-in, with its org override.
  await call("hasFeatureFlags(forceApi)", () =>
    hasFeatureFlags({ featureFlags: [{ flag: "js_sdk_limit", value: 12 }], forceApi: true }),
  );
  await call("hasFeatureFlags(forceApi, wrong value)", () =>
    hasFeatureFlags({ featureFlags: [{ flag: "js_sdk_limit", value: 6 }], forceApi: true }),
  );
  await call("getCurrentOrganization", () => getCurrentOrganization());
  await call("getUserProfile", () => getUserProfile());
}

await managementApi();
await accountApi();
process.stdout.write(JSON.stringify({ calls }));
