//! Seed 001's EcoSystem API and the organization endpoints served with it, over HTTP against the
//! real server: an ecosystem's figures before and after a real batch, its administrators, adding
//! and removing organization authorities, organization and profile parameters, and the roles
//! allowed on each.

use crate::server::{batch_id, generator_batch, Body, Server};
use serde_json::{json, Value};

fn organization(name: &str) -> Value {
    json!({
        "organizationName": name,
        "address": "Street 1, Springfield",
        "primaryContactName": "John",
        "primaryContactEmail": "j.smith@example.com",
        "primaryContactPhone": "+38 012 345 6789",
        "manufactureId": "1020",
        "organizationParameters": {"CITY": "NY", "COUNTRY": "US"}
    })
}

fn create_organization(server: &Server, token: &str, name: &str) -> i64 {
    server
        .json("POST", "/api/v1/organizations", token, organization(name))
        .expect(200, "create an organization")
        .json()
        .as_i64()
        .expect("a bare id")
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("a number: {value}"))
}

/// The entry of `list` (ordered or issued) for the UTC day of `date` (RFC 3339).
fn day<'a>(list: &'a Value, date: &str) -> Option<&'a Value> {
    let wanted = format!("{}T00:00:00Z", &date[..10]);
    list.as_array()
        .expect("an array")
        .iter()
        .find(|entry| entry["dt"] == wanted.as_str())
}

#[test]
fn ecosystem_figures_follow_a_real_batch() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let default_org = server
        .get("/api/v1/organizations/user", &token)
        .expect(200, "the admin's organization")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    let authorities = server
        .get(
            &format!("/api/v1/organizations/{default_org}/all_authorities"),
            &token,
        )
        .expect(200, "all authorities")
        .json();
    let capacity: u64 = authorities
        .as_array()
        .unwrap()
        .iter()
        .map(|a| number(&a["balance"]))
        .sum();

    // The caller's ecosystem is their organization.
    let ecosystem = server
        .get("/api/v1/ecosystems/ecosystem", &token)
        .expect(200, "the ecosystem")
        .json();
    assert_eq!(ecosystem["id"], default_org);
    assert_eq!(ecosystem["name"], "Default");
    assert_eq!(ecosystem["description"], "");
    assert_eq!(number(&ecosystem["capacity"]), capacity);
    assert!(
        ecosystem["authorities"]
            .as_str()
            .unwrap()
            .contains("ECC Device Certificate, "),
        "{ecosystem}"
    );
    let before = server
        .get("/api/v1/ecosystems/statistics", &token)
        .expect(200, "statistics")
        .json();
    assert_eq!(number(&before["capacity"]), capacity);
    assert_eq!(number(&before["used"]), 0);
    assert_eq!(before["ordered"], json!([]));
    assert_eq!(before["issued"], json!([]));
    let balance = |query: &str| {
        number(
            &server
                .get(
                    &format!("/api/v1/ecosystems/ecosystem/balance{query}"),
                    &token,
                )
                .expect(200, "balance")
                .json(),
        )
    };
    let available = balance("");
    assert_eq!(available, number(&before["balance"]));
    assert_eq!(available, capacity);

    // A real batch of 3 moves exactly 3 units from balance to used.
    let authority = server.authority(&token, 1);
    let batch = batch_id(
        &server
            .json(
                "PUT",
                "/api/v1/batches",
                &token,
                generator_batch(authority, "eco", "02:00:00:0E:00:00", 3),
            )
            .expect(200, "a batch")
            .json(),
    );
    server.wait_ready(&token, batch);
    let created = server
        .get(&format!("/api/v1/batches/{batch}"), &token)
        .expect(200, "the batch")
        .json()["creationDate"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = server
        .get("/api/v1/ecosystems/statistics", &token)
        .expect(200, "statistics after the batch")
        .json();
    assert_eq!(number(&after["capacity"]), capacity);
    assert_eq!(number(&after["used"]), 3);
    assert_eq!(number(&after["balance"]), available - 3);
    assert_eq!(balance(""), available - 3);
    let ordered = day(&after["ordered"], &created).expect("today's orders");
    assert_eq!(ordered["total"], 1);
    assert_eq!(ordered["devices"], 3);
    let issued = day(&after["issued"], &created).expect("today's issues");
    assert_eq!(issued["total"], 1);
    assert_eq!(issued["devices"], 3);

    // ?ecosystemId= names another organization; its figures are its own.
    let acme = create_organization(&server, &token, "Acme");
    let query = format!("?ecosystemId={acme}");
    let empty = server
        .get(&format!("/api/v1/ecosystems/ecosystem{query}"), &token)
        .expect(200, "another ecosystem")
        .json();
    assert_eq!(
        empty,
        json!({"id": acme, "name": "Acme", "description": "Street 1, Springfield",
               "authorities": "", "capacity": 0})
    );
    let added = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{acme}/authority"),
            &token,
            json!({"profileId": 2, "balance": 10}),
        )
        .expect(200, "an authority for Acme")
        .json();
    let acme_authority = added["id"].as_i64().unwrap();
    let read = server
        .get(&format!("/api/v1/ecosystems/ecosystem{query}"), &token)
        .expect(200, "another ecosystem")
        .json();
    assert_eq!(read["authorities"], "ECC Server Certificate");
    assert_eq!(read["capacity"], 10);
    assert_eq!(balance(&query), 10);
    // A disabled authority has capacity, but no balance to order with.
    server
        .json(
            "PUT",
            &format!("/api/v1/organizations/{acme}/authorities/{acme_authority}"),
            &token,
            json!({"enabled": false}),
        )
        .expect(200, "disable");
    assert_eq!(balance(&query), 0);
    let statistics = server
        .get(&format!("/api/v1/ecosystems/statistics{query}"), &token)
        .expect(200, "another ecosystem's statistics")
        .json();
    assert_eq!(
        statistics,
        json!({"capacity": 10, "balance": 0, "used": 0, "ordered": [], "issued": []})
    );

    // Unknown and deleted organizations are 404.
    for path in [
        "/api/v1/ecosystems/statistics",
        "/api/v1/ecosystems/ecosystem",
        "/api/v1/ecosystems/ecosystem/balance",
    ] {
        server
            .get(&format!("{path}?ecosystemId=999999"), &token)
            .expect_error(404, "an unknown ecosystem");
    }
    let gone = create_organization(&server, &token, "Gone");
    server
        .call(
            "DELETE",
            &format!("/api/v1/organizations/{gone}"),
            Some(&token),
            Body::Empty,
            &[],
        )
        .expect(204, "delete an organization");
    server
        .get(
            &format!("/api/v1/ecosystems/ecosystem?ecosystemId={gone}"),
            &token,
        )
        .expect_error(404, "a deleted ecosystem");
}

#[test]
fn organization_authorities_are_added_and_removed() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let acme = create_organization(&server, &token, "Acme");
    let created = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{acme}/authority"),
            &token,
            json!({"profileId": 1, "balance": 10}),
        )
        .expect(200, "an authority")
        .json();
    let authority = created["id"].as_i64().unwrap();

    // Add Organization Authorities: the profile of another organization's authority, balance 0,
    // the same one when asked again.
    let template = server.authority(&token, 2);
    let add = |organization: i64, from: i64| {
        server.call(
            "PUT",
            &format!("/api/v1/organizations/{organization}/authority/{from}"),
            Some(&token),
            Body::Empty,
            &[],
        )
    };
    let added = add(acme, template).expect(200, "add an authority").json();
    assert_eq!(added["profileId"], 2);
    assert_eq!(added["balance"], 0);
    assert_eq!(added["ecosystemName"], "Acme");
    assert_eq!(added["totalEcosystemBalance"], 10);
    let again = add(acme, template).expect(200, "add it again").json();
    assert_eq!(again["id"], added["id"]);
    add(acme, 999_999).expect_error(404, "an unknown authority");
    add(999_999, template).expect_error(404, "an unknown organization");

    // A batch uses 2 units; removal is refused while units are available.
    let order = |name: &str| {
        server.json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(authority, name, "02:00:00:0D:00:00", 2),
        )
    };
    let batch = batch_id(&order("before").expect(200, "a batch").json());
    server.wait_ready(&token, batch);
    let remove = |organization: i64, id: i64| {
        server.call(
            "DELETE",
            &format!("/api/v1/organizations/{organization}/authority/{id}"),
            Some(&token),
            Body::Empty,
            &[],
        )
    };
    let refused = remove(acme, authority).expect_error(409, "an authority with a balance");
    let description = refused["error_description"].as_str().unwrap();
    assert!(
        description.contains("8 units available") && description.contains("set its balance"),
        "{refused}"
    );
    let default_org = server
        .get("/api/v1/organizations/user", &token)
        .expect(200, "own organization")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    remove(default_org, authority).expect_error(404, "another organization's authority");
    server
        .json(
            "PUT",
            &format!("/api/v1/organizations/{acme}/authorities/{authority}"),
            &token,
            json!({"balance": 2}),
        )
        .expect(200, "balance down to what is used");
    let removed = remove(acme, authority);
    assert_eq!(removed.status, 200, "{}", removed.text());
    remove(acme, authority).expect_error(404, "removing twice");

    // Gone from the lists and from ordering; its batch and events keep their records.
    let listed = server
        .get(
            &format!("/api/v1/organizations/{acme}/all_authorities"),
            &token,
        )
        .expect(200, "all authorities")
        .json();
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [added["id"].as_i64().unwrap()]);
    let read = server
        .get(&format!("/api/v1/organizations/{acme}"), &token)
        .expect(200, "the organization")
        .json();
    assert_eq!(read["authorities"].as_array().unwrap().len(), 1);
    let refused = order("after").expect_error(404, "a batch of a removed authority");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{refused}"
    );
    server
        .get(
            &format!("/api/v1/authorities/{authority}/balanceavailable"),
            &token,
        )
        .expect_error(404, "the balance of a removed authority");
    server
        .json(
            "PUT",
            &format!("/api/v1/organizations/{acme}/authorities/{authority}"),
            &token,
            json!({"balance": 5}),
        )
        .expect_error(404, "setting a removed authority");
    assert_eq!(
        server
            .get(&format!("/api/v1/batches/{batch}"), &token)
            .expect(200, "the batch stays")
            .json()["size"],
        2
    );
    // The organization's users still read the batch of the removed authority.
    server.add_user(
        &token,
        acme,
        ("line_operator", "a-password-of-line-7"),
        "op@acme.test",
        "USER",
    );
    let (operator, _) = server.login("line_operator", "a-password-of-line-7");
    server
        .get(&format!("/api/v1/batches/{batch}"), &operator)
        .expect(200, "the organization's user reads the batch");
    assert_eq!(
        server
            .get("/api/v1/devices", &operator)
            .expect(200, "device counts")
            .json(),
        json!({"ordered": 2, "issued": 2})
    );
    let events = server
        .get(
            &format!("/api/v1/organizations/{acme}/authorities/{authority}/events"),
            &token,
        )
        .expect(200, "events stay")
        .json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CREATED", "BALANCE_SET", "DELETED"], "{events}");
    assert_eq!(events[2]["actor"], "user 1");

    // The organization gets a new authority for the profile, from the removed one.
    let renewed = add(acme, authority)
        .expect(200, "re-add from the removed authority")
        .json();
    assert_ne!(renewed["id"], authority);
    assert_eq!(renewed["profileId"], 1);
    assert_eq!(renewed["balance"], 0);
    let listed = server
        .get(
            &format!("/api/v1/organizations/{acme}/all_authorities"),
            &token,
        )
        .expect(200, "all authorities")
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn ecosystem_administrators_are_read_and_updated() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let acme = create_organization(&server, &admin, "Acme");
    let user = |login: &str, email: &str, first: &str, role: &str| {
        server
            .json(
                "PUT",
                "/api/v1/users",
                &admin,
                json!({
                    "firstName": first,
                    "lastName": "Smith",
                    "phone": "+38 050 492 4110",
                    "email": email,
                    "organizationId": acme,
                    "credentials": {"login": login, "password": "a-password-of-line-7"},
                    "userPrivileges": [{"userRole": role, "organizationId": acme}]
                }),
            )
            .expect(200, "create a user")
            .json()
            .as_i64()
            .unwrap()
    };
    let eco = user("eco_admin_1", "eve@acme.test", "Eve", "ECO_ADMIN");
    let operator = user("line_operator", "op@acme.test", "John", "USER");
    let client = user("eco_client_1", "client@acme.test", "Client", "ECO_ADMIN");
    // An API client is a row of kind CLIENT: not a person, never an administrator.
    let db = rusqlite::Connection::open(server.data.join("certmill.db")).expect("open the store");
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute("UPDATE users SET kind = 'CLIENT' WHERE id = ?1", [client])
        .expect("make it a client");
    drop(db);

    let search = |line: Value| server.json("POST", "/api/v1/ecosystems/users", &admin, line);
    let all = search(json!({"searchLine": ""}))
        .expect(200, "all administrators")
        .json();
    let logins: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["credentials"]["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["admin", "eco_admin_1"]);
    assert_eq!(all[1]["ecosystemId"], acme);
    assert_eq!(all[1]["organizationName"], "Acme");
    assert_eq!(all[1]["userPrivileges"][0]["ecosystemId"], acme);
    assert_eq!(all[1]["userPrivileges"][0]["userRole"], "ECO_ADMIN");
    assert_eq!(all[0]["isAdmin"], true);
    let found = search(json!({"searchLine": "EVE@"}))
        .expect(200, "by e-mail")
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["userId"], eco);
    let none = search(json!({"searchLine": "john"}))
        .expect(200, "a USER's name")
        .json();
    assert_eq!(none, json!([]));
    for bad in [json!({"searchLine": "a b"}), json!({})] {
        let refused = search(bad).expect_error(400, "a bad searchLine");
        assert!(
            refused["error_description"]
                .as_str()
                .unwrap()
                .contains("searchLine"),
            "{refused}"
        );
    }

    // One administrator: read, updated through the User API's rules.
    let read = server
        .get(&format!("/api/v1/ecosystems/users/{eco}"), &admin)
        .expect(200, "an administrator")
        .json();
    assert_eq!(read["firstName"], "Eve");
    assert_eq!(read["ecosystemId"], acme);
    for id in [operator, client, 999_999] {
        server
            .get(&format!("/api/v1/ecosystems/users/{id}"), &admin)
            .expect_error(404, "not an administrator");
    }
    let update = |id: i64, body: Value| {
        server.json(
            "PUT",
            &format!("/api/v1/ecosystems/users/{id}"),
            &admin,
            body,
        )
    };
    let contact = |first: &str, roles: &[&str]| {
        let privileges: Vec<Value> = roles
            .iter()
            .map(|r| {
                json!({"id": 1, "userRole": r, "ecosystemId": acme, "organizationId": acme,
                            "accessibleProfiles": [1]})
            })
            .collect();
        json!({"firstName": first, "lastName": "Smith", "phone": "+38 800 555 3535",
               "email": "eve@acme.test", "userPrivileges": privileges})
    };
    let updated = update(eco, contact("Evelyn", &["ECO_ADMIN", "USER"]))
        .expect(200, "update an administrator")
        .json();
    assert_eq!(updated["firstName"], "Evelyn");
    assert_eq!(updated["phone"], "+38 800 555 3535");
    let read = server
        .get(&format!("/api/v1/ecosystems/users/{eco}"), &admin)
        .expect(200, "read back")
        .json();
    assert_eq!(read["firstName"], "Evelyn");
    assert_eq!(read["userPrivileges"].as_array().unwrap().len(), 2);
    assert_eq!(read["userPrivileges"][0]["accessibleProfiles"], json!([1]));
    let refused = update(eco, contact("Ev3", &["ECO_ADMIN"])).expect_error(400, "a bad name");
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("firstName"));
    update(operator, contact("John", &["USER"])).expect_error(404, "not an administrator");
    let own = json!({"firstName": "Admin", "lastName": "Smith", "phone": "+38 800 555 3535",
                     "email": "admin@example.com", "userPrivileges": [{"userRole": "USER"}]});
    let refused = update(1, own).expect_error(409, "an administrator taking ADMIN from themselves");
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("themselves"));
}

#[test]
fn parameters_and_allowed_profiles() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let acme = create_organization(&server, &admin, "Acme");
    let parameters = server
        .get(
            &format!("/api/v1/organizations/profile_parameters/{acme}"),
            &admin,
        )
        .expect(200, "organization parameters")
        .json();
    assert_eq!(
        parameters,
        json!({"CITY": "NY", "COUNTRY": "US", "ORGANIZATION": "Acme", "MANUFACTURER_ID": "1020"})
    );
    server
        .get("/api/v1/organizations/profile_parameters/999999", &admin)
        .expect_error(404, "an unknown organization");

    let definitions = server
        .get("/api/v1/profiles/organization_parameters", &admin)
        .expect(200, "organization profile parameters")
        .json();
    let names: Vec<&str> = definitions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deviceClass"), "{definitions}");
    assert!(!names.contains(&"pkcs12Password"), "{definitions}");
    for definition in definitions.as_array().unwrap() {
        for key in ["name", "type", "pattern", "message"] {
            assert!(definition.get(key).is_some(), "{key} in {definition}");
        }
    }

    let authority = server.authority(&admin, 1);
    let profile = server
        .get(
            &format!("/api/v1/users/profiles?authorityId={authority}"),
            &admin,
        )
        .expect(200, "the authority's profile")
        .json();
    assert_eq!(profile["profileId"], 1);
    assert_eq!(profile["ca"], "ECC Device Certificate");
    assert_eq!(profile["algorithms"], json!(["EC:P-256"]));
    server
        .get("/api/v1/users/profiles?authorityId=999999", &admin)
        .expect_error(404, "an unknown authority");
}

#[test]
fn only_admin_administers_ecosystems() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let tokens = server.role_users(&f);
    let org_b = server
        .get("/api/v1/organizations/user", &tokens[2].1)
        .expect(200, "OrgB")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    let theirs = server
        .json(
            "POST",
            &format!("/api/v1/organizations/{org_b}/authority"),
            &admin,
            json!({"profileId": 1, "balance": 1}),
        )
        .expect(200, "an authority for OrgB")
        .json()["id"]
        .as_i64()
        .unwrap();
    let default_authority = server.authority(&admin, 1);
    // (method, path, body, status for ADMIN); every other role gets 403, no token 401.
    let admin_only: Vec<(&str, String, Option<Value>, u16)> = vec![
        ("GET", "/api/v1/ecosystems/statistics".into(), None, 200),
        (
            "POST",
            "/api/v1/ecosystems/users".into(),
            Some(json!({"searchLine": ""})),
            200,
        ),
        ("GET", "/api/v1/ecosystems/ecosystem".into(), None, 200),
        (
            "GET",
            "/api/v1/ecosystems/ecosystem/balance".into(),
            None,
            200,
        ),
        ("GET", "/api/v1/ecosystems/users/1".into(), None, 200),
        (
            "PUT",
            "/api/v1/ecosystems/users/999999".into(),
            Some(
                json!({"firstName": "John", "lastName": "Smith", "phone": "+38 800 555 3535",
                        "email": "nobody@example.com"}),
            ),
            404,
        ),
        (
            "PUT",
            format!("/api/v1/organizations/{org_b}/authority/{default_authority}"),
            None,
            200,
        ),
        (
            "DELETE",
            format!("/api/v1/organizations/{org_b}/authority/999999"),
            None,
            404,
        ),
        (
            "GET",
            format!("/api/v1/organizations/profile_parameters/{org_b}"),
            None,
            200,
        ),
        (
            "GET",
            "/api/v1/profiles/organization_parameters".into(),
            None,
            200,
        ),
    ];
    for (method, path, body, admin_status) in &admin_only {
        let call = |token: Option<&str>| match body {
            Some(body) => server.call(method, path, token, Body::Json(body.clone()), &[]),
            None => server.call(method, path, token, Body::Empty, &[]),
        };
        let r = call(Some(&admin));
        assert_eq!(
            r.status,
            *admin_status,
            "ADMIN {method} {path}: {}",
            r.text()
        );
        for (role, token) in &tokens {
            let r = call(Some(token));
            assert_eq!(r.status, 403, "{role} {method} {path}: {}", r.text());
        }
        assert_eq!(call(None).status, 401, "no token {method} {path}");
    }

    // The allowed profiles of an authority: ADMIN or USER, a USER only for their own
    // organization's authorities.
    let path = |id: i64| format!("/api/v1/users/profiles?authorityId={id}");
    for (role, token) in &tokens {
        let r = server.get(&path(theirs), token);
        let expected = if *role == "USER" { 200 } else { 403 };
        assert_eq!(r.status, expected, "{role}: {}", r.text());
    }
    server
        .get(&path(default_authority), &tokens[2].1)
        .expect_error(404, "another organization's authority");
    assert_eq!(
        server
            .call("GET", &path(theirs), None, Body::Empty, &[])
            .status,
        401
    );

    server.assert_documented(&[
        "/api/v1/ecosystems/statistics",
        "/api/v1/ecosystems/users",
        "/api/v1/ecosystems/ecosystem",
        "/api/v1/ecosystems/ecosystem/balance",
        "/api/v1/ecosystems/users/{userId}",
        "/api/v1/organizations/{organizationId}/authority/{authorityId}",
        "/api/v1/organizations/profile_parameters/{organizationId}",
        "/api/v1/profiles/organization_parameters",
        "/api/v1/users/profiles",
    ]);
}
