use super::*;

const FIELDS: &[Field] = &[
    Field {
        name: "username",
        column: "username",
        kind: FieldType::Text,
    },
    Field {
        name: "id",
        column: "id",
        kind: FieldType::Integer,
    },
    Field {
        name: "createdAt",
        column: "created_at",
        kind: FieldType::Timestamp,
    },
    Field {
        name: "active",
        column: "active",
        kind: FieldType::Boolean,
    },
    Field {
        name: "note",
        column: "note",
        kind: FieldType::Text,
    },
];

/// A table of five users to run compiled filters against.
fn users() -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL,
                             created_at INTEGER NOT NULL, active INTEGER NOT NULL, note TEXT);
         INSERT INTO users VALUES
           (1, 'user@example.com', 1600697949, 1, NULL),
           (2, 'user2@example.com', 1600697950, 0, 'line A'),
           (3, 'O''Brien', 1577836800, 1, 'it''s'),
           (4, 'admin', 1700000000, 1, ''),
           (5, '%_\\', 1500000000, 0, 'x');",
    )
    .unwrap();
    db
}

/// The ids a filter selects, in id order.
fn ids(db: &rusqlite::Connection, filter: &str) -> Vec<i64> {
    let compiled = compile(filter, FIELDS).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let sql = format!("SELECT id FROM users WHERE {} ORDER BY id", compiled.sql);
    let mut statement = db.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map(rusqlite::params_from_iter(compiled.values.iter()), |row| {
            row.get(0)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn refused(filter: &str) -> FilterError {
    compile(filter, FIELDS).expect_err(filter)
}

#[test]
fn comparisons_select_the_rows_the_seed_describes() {
    let db = users();
    let cases: &[(&str, &[i64])] = &[
        ("", &[1, 2, 3, 4, 5]),
        ("username eq 'user@example.com'", &[1]),
        ("USERNAME EQ 'user@example.com'", &[1]),
        ("username ne 'admin'", &[1, 2, 3, 5]),
        ("username neq 'admin'", &[1, 2, 3, 5]),
        ("id gt 3", &[4, 5]),
        ("id ge 3", &[3, 4, 5]),
        ("id lt 2", &[1]),
        ("id le -1", &[]),
        ("active eq true", &[1, 3, 4]),
        ("active eq false", &[2, 5]),
        ("createdAt gt '2020-09-21T14:19:09.769747'", &[2, 4]),
        ("createdAt ge '2020-09-21T14:19:09Z'", &[1, 2, 4]),
        ("createdAt lt 2020-01-01T00:00:00Z", &[5]),
        ("createdAt le '2020-01-01T01:00:00+01:00'", &[3, 5]),
        ("id in [1, 3, 9]", &[1, 3]),
        ("username in ['admin', 'nobody']", &[4]),
        ("id in [null]", &[]),
        ("2020 in createdAt", &[1, 2, 3]),
        ("'example' in username", &[1, 2]),
        ("contains(username, 'user2')", &[2]),
        ("startswith(username, 'user')", &[1, 2]),
        ("endswith(username, '.com')", &[1, 2]),
        ("contains(username, 'USER')", &[]),
        ("contains(note, '')", &[2, 3, 4, 5]),
        ("note eq null", &[1]),
        ("note ne null", &[2, 3, 4, 5]),
        ("note gt null", &[]),
        ("username eq 'O''Brien'", &[3]),
        ("note eq 'it''s'", &[3]),
        // LIKE wildcards are data, not patterns.
        ("contains(username, '%')", &[5]),
        ("startswith(username, '%_')", &[5]),
        ("endswith(username, '\\')", &[5]),
        ("id gt 1 and id lt 4", &[2, 3]),
        ("id eq 1 or id eq 4", &[1, 4]),
        ("id eq 1 or id eq 2 and active eq true", &[1]),
        ("(id eq 1 or id eq 2) and active eq true", &[1]),
        ("not active eq true", &[2, 5]),
        ("not (id lt 3 or id gt 4)", &[3, 4]),
        ("active eq true && id gt 1", &[]),
    ];
    for (filter, expected) in cases {
        if filter.contains("&&") {
            // `&&` is seed 004's spelling, not seed 002's: refused, not misread.
            assert!(compile(filter, FIELDS).is_err(), "{filter}");
            continue;
        }
        assert_eq!(ids(&db, filter), *expected, "{filter}");
    }
}

#[test]
fn every_value_is_a_bound_parameter() {
    let db = users();
    for hostile in [
        "username eq 'x'' OR 1=1 --'",
        "username eq '''; DROP TABLE users; --'",
        "contains(username, ''') OR 1=1 OR instr(username, ''')",
        "'1) OR (1=1' in username",
    ] {
        let compiled = compile(hostile, FIELDS).unwrap();
        assert!(!compiled.sql.contains("DROP") && !compiled.sql.contains("1=1"));
        assert!(ids(&db, hostile).is_empty(), "{hostile}");
    }
    // An unbalanced quote ends the string early: what follows is refused, not run.
    let e = refused("username eq ''; DROP TABLE users; --'");
    assert_eq!(e.position, 15, "{e}");
    assert_eq!(ids(&db, "id gt 0").len(), 5, "the table is still there");
    let compiled = compile("username eq 'a' and id in [1, 2]", FIELDS).unwrap();
    assert_eq!(compiled.sql, "(username = ? AND id IN (?, ?))");
    assert_eq!(
        compiled.values,
        [
            Value::Text("a".into()),
            Value::Integer(1),
            Value::Integer(2)
        ]
    );
}

#[test]
fn malformed_filters_are_refused_at_their_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("username eq", 12, "expected a literal"),
        ("username eq 'open", 13, "closing quote"),
        ("password eq 'x'", 1, "unknown property \"password\""),
        ("id like 3", 4, "expected an operator"),
        ("id eq 'three'", 7, "id is a whole number, not a string"),
        ("username eq 3", 13, "username is text, not a number"),
        ("active eq 1", 11, "active is true or false, not a number"),
        ("createdAt gt 'yesterday'", 14, "not an RFC 3339 timestamp"),
        ("id eq 1 id eq 2", 9, "expected 'and', 'or' or the end"),
        ("(id eq 1", 9, "expected ')'"),
        ("id eq 1)", 8, "expected 'and', 'or' or the end"),
        ("id in 1", 7, "expected '['"),
        ("id in [1 2]", 10, "expected ',' or ']'"),
        ("contains(id, '1')", 10, "applies to text properties"),
        ("contains(username, 1)", 20, "takes a string"),
        ("true in username", 1, "cannot be contained"),
        ("id eq 1 ; drop", 9, "unexpected character ';'"),
        (
            "id eq 99999999999999999999",
            7,
            "not a whole number of 64 bits",
        ),
        ("3 eq id", 3, "a literal on the left takes 'in'"),
    ];
    for (filter, position, message) in cases {
        let e = refused(filter);
        assert_eq!(e.position, *position, "{filter}: {e}");
        assert!(e.message.contains(message), "{filter}: {e}");
    }
}

#[test]
fn limits_hold() {
    let long = format!("username eq '{}'", "x".repeat(MAX_FILTER_LEN));
    assert!(refused(&long).message.contains("longer than"));
    let deep = format!(
        "{}id eq 1{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(refused(&deep).message.contains("nested more than"));
    let nots = format!("{}id eq 1", "not ".repeat(MAX_DEPTH + 1));
    assert!(refused(&nots).message.contains("nested more than"));
    let many = vec!["id eq 1"; MAX_TERMS + 1].join(" or ");
    assert!(refused(&many).message.contains("more than"));
    let list: Vec<String> = (0..=MAX_LIST).map(|i| i.to_string()).collect();
    let wide = format!("id in [{}]", list.join(","));
    assert!(refused(&wide).message.contains("values in one list"));
    // Right at the limits is fine.
    let just = vec!["id eq 1"; MAX_TERMS].join(" or ");
    assert!(compile(&just, FIELDS).is_ok());
}

#[test]
fn arbitrary_input_never_panics() {
    // A cheap deterministic sweep; the fuzz target covers the rest.
    let alphabet: Vec<char> = "ab1 '()[],-:Tinoteqandr\u{e9}\u{0}".chars().collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let len = (state % 24) as usize;
        let mut text = String::new();
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = compile(&text, FIELDS);
    }
}
