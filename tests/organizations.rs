//! Seed 001's Organization API over HTTP against the real server: create, read, list with
//! paging and filters, update, name check, select items, and deletion refused while an
//! organization has users, balances or running batches.

use crate::server::{Body, Server, BOB_PASSWORD};
use serde_json::{json, Value};

fn organization(name: &str) -> Value {
    json!({
        "organizationName": name,
        "address": "Street 1",
        "primaryContactName": "John",
        "primaryContactEmail": "j.smith@example.com",
        "primaryContactPhone": "+38 012 345 6789",
        "orgStatus": "ACTIVE",
        "manufactureId": "1020",
        "logo": "Logo"
    })
}

#[test]
fn the_administration_of_organizations() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();

    // Create: the answer is the new id, a bare number.
    let acme = server
        .json(
            "POST",
            "/api/v1/organizations",
            &token,
            organization("Acme"),
        )
        .expect(200, "create")
        .json()
        .as_i64()
        .expect("a bare id");
    let read = server
        .get(&format!("/api/v1/organizations/{acme}"), &token)
        .expect(200, "read")
        .json();
    assert_eq!(read["organizationName"], "Acme");
    assert_eq!(read["primaryContactPhone"], "+38 012 345 6789");
    assert_eq!(read["orgStatus"], "ACTIVE");
    assert_eq!(read["ecosystemId"], acme);
    assert_eq!(read["authorities"], json!([]));

    // Names are unique (case ignored); fields are checked by name.
    server
        .json(
            "POST",
            "/api/v1/organizations",
            &token,
            organization("ACME"),
        )
        .expect_error(409, "a taken name");
    let mut bad = organization("Bad Mail");
    bad["primaryContactEmail"] = json!("not-an-address");
    let refused = server
        .json("POST", "/api/v1/organizations", &token, bad)
        .expect_error(400, "a malformed e-mail");
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("primaryContactEmail"));
    let mut bad = organization("Bad Phone");
    bad["primaryContactPhone"] = json!("call me");
    server
        .json("POST", "/api/v1/organizations", &token, bad)
        .expect_error(400, "a malformed phone number");
    let mut empty = organization("");
    empty["address"] = json!("");
    server
        .json("POST", "/api/v1/organizations", &token, empty)
        .expect_error(400, "an empty name");
    assert_eq!(
        server
            .get("/api/v1/organizations/check_organization?name=acme", &token)
            .expect(200, "check")
            .json(),
        json!(true)
    );
    assert_eq!(
        server
            .get(
                "/api/v1/organizations/check_organization?name=Nobody",
                &token
            )
            .expect(200, "check")
            .json(),
        json!(false)
    );

    // Update: details change, the name stays.
    let mut changed = organization("Acme");
    changed["organizationId"] = json!(acme);
    changed["address"] = json!("Street 2");
    changed["organizationParameters"] = json!({"CITY": "NY", "COUNTRY": "US"});
    server
        .json("PUT", "/api/v1/organizations", &token, changed.clone())
        .expect(200, "update");
    let read = server
        .get(&format!("/api/v1/organizations/{acme}"), &token)
        .expect(200, "read after update")
        .json();
    assert_eq!(read["address"], "Street 2");
    assert_eq!(read["organizationParameters"]["CITY"], "NY");
    changed["organizationName"] = json!("Renamed");
    server
        .json("PUT", "/api/v1/organizations", &token, changed)
        .expect_error(400, "a rename");

    // Lists: paging and seed 002's filters.
    let beta = server
        .json(
            "POST",
            "/api/v1/organizations",
            &token,
            organization("Beta Line"),
        )
        .expect(200, "create beta")
        .json()
        .as_i64()
        .unwrap();
    let all = server
        .get("/api/v1/organizations?page=0&size=50", &token)
        .expect(200, "list")
        .json();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["organizationName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Default", "Acme", "Beta Line"]);
    let second = server
        .get("/api/v1/organizations?page=1&size=2", &token)
        .expect(200, "page 1")
        .json();
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert_eq!(second[0]["organizationId"], beta);
    let filtered = server
        .get(
            "/api/v1/organizations?filter=startswith(organizationName,%27Beta%27)%20or%20organizationId%20eq%200",
            &token,
        )
        .expect(200, "filter")
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    let refused = server
        .get(
            "/api/v1/organizations?filter=password%20eq%20%27x%27",
            &token,
        )
        .expect_error(400, "a filter on an unknown property");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("position 1: unknown property"),
        "{refused}"
    );
    server
        .get("/api/v1/organizations?size=51", &token)
        .expect_error(400, "a page over 50");
    let items = server
        .get("/api/v1/organizations/select/items", &token)
        .expect(200, "select items")
        .json();
    assert!(items
        .as_array()
        .unwrap()
        .contains(&json!({"id": acme, "name": "Acme"})));

    // A user of another organization sees only their own, and administers nothing.
    server.add_bob(&f);
    let (bob, _) = server.login("bob", BOB_PASSWORD);
    let own = server
        .get("/api/v1/organizations/user", &bob)
        .expect(200, "own organization")
        .json();
    assert_eq!(own["organizationName"], "OrgB");
    let own_id = own["organizationId"].as_i64().unwrap();
    server
        .get(&format!("/api/v1/organizations/{own_id}"), &bob)
        .expect(200, "own organization by id");
    server
        .get(&format!("/api/v1/organizations/{acme}"), &bob)
        .expect_error(404, "another organization");
    server
        .get("/api/v1/organizations", &bob)
        .expect_error(403, "a USER lists organizations");
    server
        .json("POST", "/api/v1/organizations", &bob, organization("Mine"))
        .expect_error(403, "a USER creates an organization");
    server
        .call(
            "DELETE",
            &format!("/api/v1/organizations/{acme}"),
            Some(&bob),
            Body::Empty,
            &[],
        )
        .expect_error(403, "a USER deletes an organization");

    // Deletion is refused while the organization has users or balances.
    let delete = |id: i64| {
        server.call(
            "DELETE",
            &format!("/api/v1/organizations/{id}"),
            Some(&token),
            Body::Empty,
            &[],
        )
    };
    let in_use = delete(own_id).expect_error(409, "an organization with a user");
    assert!(
        in_use["error_description"]
            .as_str()
            .unwrap()
            .contains("user"),
        "{in_use}"
    );
    // Authorities: created for a profile, topped up, set, disabled; every change logged.
    let created = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{acme}/authority"),
            &token,
            json!({"profileId": 1, "balance": 10}),
        )
        .expect(200, "create an authority")
        .json();
    assert_eq!(created["balance"], 10);
    assert_eq!(created["usedBalance"], 0);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["ecosystemName"], "Acme");
    let authority = created["id"].as_i64().unwrap();
    server
        .json(
            "POST",
            &format!("/api/v1/organizations/{acme}/authority"),
            &token,
            json!({"profileId": 1, "balance": 10}),
        )
        .expect_error(409, "a second authority for the profile");
    let topped = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{acme}/authority"),
            &token,
            json!({"profileName": "ECC Device Certificate", "addedBalance": 5}),
        )
        .expect(200, "top up")
        .json();
    assert_eq!(topped["balance"], 15);
    assert_eq!(topped["totalEcosystemBalance"], 15);
    let authorities = server
        .get(
            &format!("/api/v1/organizations/{acme}/all_authorities"),
            &token,
        )
        .expect(200, "all authorities")
        .json();
    assert_eq!(authorities[0]["balance"], 15);
    // A disabled authority orders nothing; a total below what is used is refused.
    let set = |body: Value| {
        server.json(
            "PUT",
            &format!("/api/v1/organizations/{acme}/authorities/{authority}"),
            &token,
            body,
        )
    };
    set(json!({"enabled": false})).expect(200, "disable");
    let order = |name: &str| {
        server.json(
            "PUT",
            "/api/v1/batches",
            &token,
            crate::server::generator_batch(authority, name, "02:00:00:0A:00:00", 2),
        )
    };
    order("disabled").expect_error(409, "a batch of a disabled authority");
    let enabled = set(json!({"enabled": true, "balance": 12}))
        .expect(200, "enable and set")
        .json();
    assert_eq!(enabled["availableBalance"], 12);
    let batch = crate::server::batch_id(&order("enabled").expect(200, "a batch").json());
    server.wait_ready(&token, batch);
    let refused = set(json!({"balance": 1})).expect_error(409, "a total below the used units");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("already used or reserved"),
        "{refused}"
    );
    let after = set(json!({"balance": 4}))
        .expect(200, "a total above")
        .json();
    assert_eq!(after["usedBalance"], 2);
    assert_eq!(after["availableBalance"], 2);
    let events = server
        .get(
            &format!("/api/v1/organizations/{acme}/authorities/{authority}/events"),
            &token,
        )
        .expect(200, "authority events")
        .json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "CREATED",
            "TOPPED_UP",
            "DISABLED",
            "BALANCE_SET",
            "ENABLED",
            "BALANCE_SET"
        ],
        "{events}"
    );
    assert_eq!(events[0]["actor"], "user 1");
    let in_use = delete(acme).expect_error(409, "an organization with a balance");
    assert!(
        in_use["error_description"]
            .as_str()
            .unwrap()
            .contains("balance"),
        "{in_use}"
    );
    // An organization with nothing left goes, and is gone everywhere.
    let gone = delete(beta);
    assert_eq!(gone.status, 204, "{}", gone.text());
    server
        .get(&format!("/api/v1/organizations/{beta}"), &token)
        .expect_error(404, "a deleted organization");
    assert_eq!(
        server
            .get(
                "/api/v1/organizations/check_organization?name=Beta%20Line",
                &token
            )
            .expect(200, "check")
            .json(),
        json!(false)
    );
    delete(beta).expect_error(404, "deleting twice");
    server.assert_documented(&[
        "/api/v1/organizations",
        "/api/v1/organizations/{organizationId}",
        "/api/v1/organizations/check_organization",
    ]);
}

#[test]
fn users_change_their_own_password_and_logins_are_checked() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    server.add_bob(&f);
    let (bob, bob_refresh) = server.login("bob", BOB_PASSWORD);
    let change = |current: &str, new: &str, repeated: &str| {
        server.json(
            "PUT",
            "/api/v1/users/credentials",
            &bob,
            json!({"currentPassword": current, "newPassword": new, "repeatedNewPassword": repeated}),
        )
    };
    let new_password = "a-new-long-password";
    assert_eq!(
        change("not-my-password", new_password, new_password)
            .expect(200, "a wrong current password")
            .json(),
        json!(false)
    );
    change(BOB_PASSWORD, new_password, "something-else").expect_error(400, "the repeat differs");
    change(BOB_PASSWORD, "short", "short").expect_error(400, "a password under the policy");
    assert_eq!(
        change(BOB_PASSWORD, new_password, new_password)
            .expect(200, "change")
            .json(),
        json!(true)
    );
    // The other sessions end: the refresh token issued before is revoked.
    let refreshed = server.call(
        "POST",
        "/auth/refresh",
        None,
        Body::Raw(bob_refresh.as_bytes(), "text/plain"),
        &[],
    );
    assert_eq!(refreshed.status, 401, "{}", refreshed.text());
    server
        .call(
            "POST",
            "/auth/pwd",
            None,
            Body::Json(json!({"username": "bob", "password": BOB_PASSWORD})),
            &[],
        )
        .expect_error(401, "the old password");
    server.login("bob", new_password);

    assert_eq!(
        server
            .get("/api/v1/users/check_user?username=BOB", &token)
            .expect(200, "check_user")
            .json(),
        json!(true)
    );
    assert_eq!(
        server
            .get("/api/v1/users/check_user?username=carol", &token)
            .expect(200, "check_user")
            .json(),
        json!(false)
    );
    let (bob, _) = server.login("bob", new_password);
    server
        .get("/api/v1/users/check_user?username=admin", &bob)
        .expect_error(403, "a USER checks logins");
}

/// Every administration endpoint against every role: ADMIN may, the others may not (403), and
/// what every user may do for themselves works for each role.
#[test]
fn role_matrix_of_the_administration_endpoints() {
    const ADMIN_ONLY_200: [u16; 4] = [200, 403, 403, 403];
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let mut tokens = vec![("ADMIN", admin.clone())];
    tokens.extend(server.role_users(&f));
    let default_org = server
        .get("/api/v1/organizations/user", &admin)
        .expect(200, "the admin's organization")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    let org_b = server
        .get("/api/v1/organizations/user", &tokens[3].1)
        .expect(200, "OrgB")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    // (method, path, body, status for ADMIN, ECO_ADMIN, ORG_ADMIN, USER). The scoped
    // administrators (ECO_ADMIN, ORG_ADMIN of OrgB) administer their own organization's people
    // and API clients; another organization's user is 404 to them.
    let matrix: Vec<(&str, String, Option<Value>, [u16; 4])> = vec![
        ("GET", "/api/v1/organizations".into(), None, ADMIN_ONLY_200),
        (
            "GET",
            "/api/v1/organizations/select/items".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/organizations/check_organization?name=OrgB".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            format!("/api/v1/organizations/{default_org}/all_authorities"),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "DELETE",
            "/api/v1/organizations/999999".into(),
            None,
            [404, 403, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/organizations".into(),
            Some(json!({"organizationId": 999999})),
            [404, 403, 403, 403],
        ),
        (
            "POST",
            format!("/api/v1/organizations/{default_org}/authority"),
            Some(json!({"profileId": 1, "addedBalance": 1})),
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/ecosystems/ecosystem".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/ecosystems/ecosystem/balance".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/ecosystems/statistics".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "POST",
            "/api/v1/ecosystems/users".into(),
            Some(json!({"searchLine": ""})),
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/ecosystems/users/1".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/users/check_user?username=admin".into(),
            None,
            [200, 200, 200, 403],
        ),
        ("GET", "/api/v1/users/1".into(), None, [200, 404, 404, 403]),
        (
            "GET",
            "/api/v1/users/check_email?email=a@b.test".into(),
            None,
            [200, 200, 200, 403],
        ),
        (
            "POST",
            format!("/api/v1/users/organizations/{default_org}"),
            Some(json!({})),
            [200, 404, 404, 403],
        ),
        (
            "POST",
            format!("/api/v1/users/organizations/{org_b}"),
            Some(json!({})),
            [200, 200, 200, 403],
        ),
        // Validation comes after the role check: an empty body is 400 to whoever may create.
        (
            "PUT",
            "/api/v1/users".into(),
            Some(json!({})),
            [400, 400, 400, 403],
        ),
        (
            "PUT",
            "/api/v1/users/1".into(),
            Some(json!({})),
            [400, 400, 400, 403],
        ),
        (
            "GET",
            "/api/v1/users/remove_user?userId=999999".into(),
            None,
            [404, 404, 404, 403],
        ),
        (
            "GET",
            "/api/v1/credentials".into(),
            None,
            [200, 200, 200, 403],
        ),
        (
            "POST",
            "/api/v1/credentials".into(),
            Some(json!({})),
            [400, 400, 400, 403],
        ),
        (
            "GET",
            "/api/v1/credentials/no-such-client".into(),
            None,
            [404, 404, 404, 403],
        ),
        ("GET", "/api/v1/issuers".into(), None, ADMIN_ONLY_200),
        (
            "GET",
            "/api/v1/issuers/default/signers".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "GET",
            "/api/v1/issuers/default/signers/current/chain".into(),
            None,
            ADMIN_ONLY_200,
        ),
        (
            "POST",
            "/api/v1/issuers/nobody!/signers".into(),
            Some(json!({})),
            [400, 403, 403, 403],
        ),
    ];
    let roles = ["ADMIN", "ECO_ADMIN", "ORG_ADMIN", "USER"];
    for (role, token) in &tokens {
        let column = roles.iter().position(|r| r == role).expect("role");
        for (method, path, body, statuses) in &matrix {
            let r = match body {
                Some(body) => server.json(method, path, token, body.clone()),
                None => server.call(method, path, Some(token), Body::Empty, &[]),
            };
            let expected = statuses[column];
            assert_eq!(r.status, expected, "{role} {method} {path}: {}", r.text());
        }
        // What every role may do for itself.
        server
            .get("/api/v1/organizations/user", token)
            .expect(200, &format!("{role} reads its organization"));
        server
            .get("/api/v1/users", token)
            .expect(200, &format!("{role} reads itself"));
        let wrong = server
            .json(
                "PUT",
                "/api/v1/users/credentials",
                token,
                json!({"currentPassword": "not-it-at-all", "newPassword": "another-password-1",
                       "repeatedNewPassword": "another-password-1"}),
            )
            .expect(200, &format!("{role} tries a password change"))
            .json();
        assert_eq!(wrong, json!(false), "{role}");
    }
}

#[test]
fn the_administration_of_users() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let acme = server
        .json(
            "POST",
            "/api/v1/organizations",
            &admin,
            organization("Acme"),
        )
        .expect(200, "create an organization")
        .json()
        .as_i64()
        .unwrap();
    let user = |login: &str, email: &str, first: &str| {
        json!({
            "firstName": first,
            "lastName": "Smith",
            "phone": "+38 050 492 4110",
            "email": email,
            "organizationId": acme,
            "credentials": {"login": login, "password": "a-password-of-line-7"},
            "userPrivileges": [{"userRole": "USER", "organizationId": acme, "accessibleProfiles": [1]}]
        })
    };
    let id = server
        .json(
            "PUT",
            "/api/v1/users",
            &admin,
            user("line_operator", "op@acme.test", "John"),
        )
        .expect(200, "create a user")
        .json()
        .as_i64()
        .expect("the new user's id");
    let read = server
        .get(&format!("/api/v1/users/{id}"), &admin)
        .expect(200, "read the user")
        .json();
    assert_eq!(read["firstName"], "John");
    assert_eq!(read["email"], "op@acme.test");
    assert_eq!(read["organizationName"], "Acme");
    assert_eq!(read["credentials"]["login"], "line_operator");
    assert_eq!(read["userPrivileges"][0]["userRole"], "USER");
    assert_eq!(read["userPrivileges"][0]["accessibleProfiles"], json!([1]));
    assert_eq!(read["isAdmin"], false);
    // Each rule refused by field name; logins and e-mail addresses are unique.
    for (body, status, field) in [
        (user("line_operator", "x@acme.test", "John"), 409, "login"),
        (user("other_login", "OP@acme.test", "John"), 409, "email"),
        (user("abc", "y@acme.test", "John"), 400, "credentials.login"),
        (user("fine_login", "z@acme.test", "J0hn"), 400, "firstName"),
        (user("fine_login", "not-mail", "John"), 400, "email"),
    ] {
        let e = server
            .json("PUT", "/api/v1/users", &admin, body)
            .expect_error(status, field);
        assert!(
            e["error_description"].as_str().unwrap().contains(field),
            "{field}: {e}"
        );
    }
    assert_eq!(
        server
            .get("/api/v1/users/check_email?email=op@acme.test", &admin)
            .expect(200, "check_email")
            .json(),
        json!(true)
    );
    assert_eq!(
        server
            .get("/api/v1/users/check_email?email=nobody@acme.test", &admin)
            .expect(200, "check_email")
            .json(),
        json!(false)
    );

    // The user logs in, sees and edits their own record.
    let (operator, _) = server.login("line_operator", "a-password-of-line-7");
    let me = server
        .get("/api/v1/users", &operator)
        .expect(200, "me")
        .json();
    assert_eq!(me["lastName"], "Smith");
    let updated = server
        .json(
            "PUT",
            "/api/v1/users/current",
            &operator,
            json!({"firstName": "Jane", "lastName": "Doe", "phone": "012-345-6789", "email": "jane@acme.test"}),
        )
        .expect(200, "update current")
        .json();
    assert_eq!(updated["firstName"], "Jane");
    server
        .json(
            "PUT",
            "/api/v1/users/update_email",
            &operator,
            json!({"email": "j.doe@acme.test"}),
        )
        .expect(200, "update e-mail");
    server
        .get(&format!("/api/v1/users/{id}"), &operator)
        .expect_error(403, "a USER reads another user record by id");

    // Lists by organization, role and search line.
    let list = |role: &str, search: &str| {
        server
            .json(
                "POST",
                &format!("/api/v1/users/organizations/{acme}?role={role}"),
                &admin,
                json!({"searchLine": search}),
            )
            .expect(200, "users of the organization")
            .json()
    };
    assert_eq!(list("user", "doe").as_array().unwrap().len(), 1);
    assert_eq!(list("user", "smith").as_array().unwrap().len(), 0);
    assert_eq!(list("org_admin", "").as_array().unwrap().len(), 0);
    // And by seed 002's filter=, bound as data, refused by position when malformed.
    let filtered = |filter: &str| {
        let query = crate::util::query_escape(filter);
        server.json(
            "POST",
            &format!("/api/v1/users/organizations/{acme}?filter={query}"),
            &admin,
            json!({}),
        )
    };
    let found = filtered("email eq 'j.doe@acme.test' and active eq true")
        .expect(200, "filter")
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(
        filtered("login eq 'x'' or 1=1 --'")
            .expect(200, "injection")
            .json(),
        json!([])
    );
    let refused = filtered("login eq").expect_error(400, "malformed filter");
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("position"));

    // ADMIN changes roles and profiles: the next request sees them.
    let promoted = server
        .json(
            "PUT",
            &format!("/api/v1/users/{id}"),
            &admin,
            json!({"firstName": "Jane", "lastName": "Doe", "phone": "012-345-6789",
                   "email": "j.doe@acme.test",
                   "userPrivileges": [{"userRole": "ORG_ADMIN", "accessibleProfiles": [1, 2]}]}),
        )
        .expect(200, "update the user")
        .json();
    assert_eq!(promoted["userPrivileges"][0]["userRole"], "ORG_ADMIN");
    let me = server
        .get("/api/v1/users", &operator)
        .expect(200, "me")
        .json();
    assert_eq!(me["userPrivileges"][0]["userRole"], "ORG_ADMIN");
    assert_eq!(me["userPrivileges"][0]["accessibleProfiles"], json!([1, 2]));
    assert_eq!(list("org_admin", "").as_array().unwrap().len(), 1);

    // The organization cannot go while the user is there; removing the user ends their
    // sessions, then it can.
    server
        .call(
            "DELETE",
            &format!("/api/v1/organizations/{acme}"),
            Some(&admin),
            Body::Empty,
            &[],
        )
        .expect_error(409, "an organization with a user");
    let me_id = server.get("/api/v1/users", &admin).expect(200, "me").json()["userId"]
        .as_i64()
        .unwrap();
    server
        .get(&format!("/api/v1/users/remove_user?userId={me_id}"), &admin)
        .expect_error(409, "an administrator removing themselves");
    assert_eq!(
        server
            .get(&format!("/api/v1/users/remove_user?userId={id}"), &admin)
            .expect(200, "remove the user")
            .json(),
        json!(true)
    );
    let gone = server.get("/api/v1/users", &operator);
    assert_eq!(gone.status, 401, "a removed user's token: {}", gone.text());
    server
        .get(&format!("/api/v1/users/remove_user?userId={id}"), &admin)
        .expect_error(404, "removing twice");
    let deleted = server.call(
        "DELETE",
        &format!("/api/v1/organizations/{acme}"),
        Some(&admin),
        Body::Empty,
        &[],
    );
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    server.assert_documented(&[
        "/api/v1/users/{userId}",
        "/api/v1/users/organizations/{organizationId}",
        "/api/v1/users/remove_user",
    ]);
}

#[test]
fn an_organizations_life_over_the_api() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    // Create the organization, its authority with a balance of 2, and its operator.
    let org = server
        .json(
            "POST",
            "/api/v1/organizations",
            &admin,
            organization("Lifeline"),
        )
        .expect(200, "create")
        .json()
        .as_i64()
        .unwrap();
    let authority = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{org}/authority"),
            &admin,
            json!({"profileId": 1, "balance": 2}),
        )
        .expect(200, "authority")
        .json()["id"]
        .as_i64()
        .unwrap();
    server.add_user(
        &admin,
        org,
        ("lina_op", "lina-password-1"),
        "lina@lifeline.example",
        "USER",
    );
    // The operator logs in and issues within the balance; beyond it is refused, unchanged.
    let (lina, _) = server.login("lina_op", "lina-password-1");
    let order = |name: &str, start: &str, size: u64| {
        server.json(
            "PUT",
            "/api/v1/batches",
            &lina,
            crate::server::generator_batch(authority, name, start, size),
        )
    };
    let refused = order("too big", "02:00:00:0B:00:00", 3).expect_error(409, "over balance");
    assert_eq!(refused["error"], "insufficient_balance");
    assert_eq!(server.balance_available(&admin, authority), 2);
    let batch = crate::server::batch_id(
        &order("first", "02:00:00:0B:00:00", 2)
            .expect(200, "within")
            .json(),
    );
    server.wait_ready(&lina, batch);
    let (out, names, _) = server.download(&lina, batch, "life");
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".p12")).count(),
        2,
        "{names:?}"
    );
    assert!(out.join("chain.pem").exists() || names.iter().any(|n| n == "chain.pem"));
    assert_eq!(server.balance_available(&admin, authority), 0);
    order("empty", "02:00:00:0B:00:10", 1).expect_error(409, "balance spent");
    // The administrator tops up; the operator issues again.
    let topped = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{org}/authority"),
            &admin,
            json!({"profileId": 1, "addedBalance": 5}),
        )
        .expect(200, "top up")
        .json();
    assert_eq!(topped["availableBalance"], 5);
    let again = crate::server::batch_id(
        &order("second", "02:00:00:0B:00:20", 1)
            .expect(200, "after top-up")
            .json(),
    );
    server.wait_ready(&lina, again);
    assert_eq!(server.balance_available(&admin, authority), 4);
    // While it has a user and a balance, the organization cannot be deleted.
    let in_use = server
        .call(
            "DELETE",
            &format!("/api/v1/organizations/{org}"),
            Some(&admin),
            Body::Empty,
            &[],
        )
        .expect_error(409, "delete while active");
    assert!(
        in_use["error_description"]
            .as_str()
            .unwrap()
            .contains("user"),
        "{in_use}"
    );
    // The operator sees their organization's batches, not the administration.
    server
        .get("/api/v1/organizations", &lina)
        .expect_error(403, "a USER lists organizations");
}

/// Who the role table lets through to an endpoint, written out here independently of the
/// server's route table: `[ADMIN, ECO_ADMIN, ORG_ADMIN, USER, API client]`.
fn reaches(method: &str, path: &str) -> [bool; 5] {
    const ADMIN: [bool; 5] = [true, false, false, false, false];
    const ADMINS: [bool; 5] = [true, true, true, false, false];
    const ISSUERS: [bool; 5] = [true, false, false, true, true];
    const EVERYONE: [bool; 5] = [true; 5];
    const PEOPLE: [bool; 5] = [true, true, true, true, false];
    let issuing = [
        "/api/v1/profiles",
        "/api/v1/generators",
        "/api/v1/authorities",
        "/api/v1/batches",
        "/api/v1/certificates",
        "/api/v1/devices",
        "/api/v1/users/profiles",
    ];
    match (method, path) {
        ("GET", "/api/v1/profiles/organization_parameters") => ADMIN,
        (_, p) if issuing.iter().any(|prefix| p.starts_with(prefix)) => ISSUERS,
        ("GET", "/api/v1/users" | "/api/v1/organizations/user")
        | ("GET", "/api/v1/organizations/{organizationId}") => EVERYONE,
        (
            "PUT",
            "/api/v1/users/current" | "/api/v1/users/update_email" | "/api/v1/users/credentials",
        ) => PEOPLE,
        (_, p) if p.starts_with("/api/v1/credentials") => ADMINS,
        ("PUT", "/api/v1/users")
        | (_, "/api/v1/users/{userId}")
        | ("POST", "/api/v1/users/organizations/{organizationId}")
        | (
            "GET",
            "/api/v1/users/check_email" | "/api/v1/users/check_user" | "/api/v1/users/remove_user",
        ) => ADMINS,
        (_, p)
            if p.starts_with("/api/v1/organizations")
                || p.starts_with("/api/v1/ecosystems")
                || p.starts_with("/api/v1/issuers") =>
        {
            ADMIN
        }
        _ => panic!("{method} {path}: not in the role table of this test; add it"),
    }
}

#[test]
fn every_authenticated_endpoint_answers_every_role_as_the_table_says() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let mut tokens = vec![admin.clone()];
    tokens.extend(server.role_users(&f).into_iter().map(|(_, token)| token));
    let org_b = server
        .get("/api/v1/organizations/user", &tokens[3])
        .expect(200, "OrgB")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    let client = server
        .json(
            "POST",
            "/api/v1/credentials",
            &admin,
            json!({"credentialName": "matrix station", "organizationId": org_b}),
        )
        .expect(200, "client")
        .json();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        client["clientId"].as_str().unwrap(),
        client["clientSecret"].as_str().unwrap()
    );
    tokens.push(
        server
            .call(
                "POST",
                "/auth/token",
                None,
                Body::Raw(form.as_bytes(), "application/x-www-form-urlencoded"),
                &[],
            )
            .expect(200, "client token")
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let roles = ["ADMIN", "ECO_ADMIN", "ORG_ADMIN", "USER", "client"];

    let doc = server
        .call("GET", "/api/v1/openapi.json", None, Body::Empty, &[])
        .expect(200, "openapi")
        .json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            if operation.get("security").is_none() {
                continue;
            }
            // Harmless arguments: unknown ids, the scoped administrators' own organization,
            // an issuer name that cannot exist, empty bodies.
            let concrete = path
                .replace("{organizationId}", &org_b.to_string())
                .replace("{issuer}", "nobody!")
                .replace("{signerSpec}", "none")
                .replace("{id}", "none")
                .replace("{userId}", "999999")
                .replace("{authorityId}", "999999")
                .replace("{batchId}", "999999")
                .replace("{profileId}", "999999");
            let expected = reaches(&method, path);
            for (i, token) in tokens.iter().enumerate() {
                // Without a token: 401, whoever would be let through.
                if i == 0 {
                    let anonymous = server.call(&method, &concrete, None, Body::Empty, &[]);
                    assert_eq!(anonymous.status, 401, "{method} {path} without a token");
                }
                let r = match method.as_str() {
                    "POST" | "PUT" => server.json(&method, &concrete, token, json!({})),
                    _ => server.call(&method, &concrete, Some(token), Body::Empty, &[]),
                };
                if expected[i] {
                    assert!(
                        r.status != 401 && r.status != 403,
                        "{} {method} {path}: let through by the table, got {}: {}",
                        roles[i],
                        r.status,
                        r.text()
                    );
                } else {
                    assert_eq!(r.status, 403, "{} {method} {path}: {}", roles[i], r.text());
                }
                checked += 1;
            }
        }
    }
    // Every authenticated endpoint, five callers each.
    assert!(checked >= 80 * 5, "{checked} checks");
}
