//! Each rule as one set-based SQL query over `payments`, `programs` and `facts`.
//!
//! A rule's query yields *evidence rows*: `(dedupe_key, payment_id, fact_id, detail)`, one
//! per payment that is part of a finding (and the fact that made it one). The run groups
//! them by `dedupe_key` into findings ([`super::run`]). Every join is on `person_key`,
//! `household_code` or a small reference table (`programs`, the rule's own parameters), so
//! on Citus, with payments, facts and findings distributed by person key, the person rules
//! are co-located joins; the household and bank-account rules repartition (see
//! docs/architecture.md, "Cross-checks").
//!
//! In an incremental run the temporary tables `check_scope` (person keys) and
//! `check_scope_households` hold what changed, and `check_scope_payments` the ids of their
//! payments; each query then looks only at those payments (`{scope}` below).

use super::rules::{Params, Rule, RuleId};

/// A value bound to a rule's query, in order ($1, $2, ...).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    Json(serde_json::Value),
}

/// A rule's query and what it binds.
#[derive(Debug, Clone)]
pub struct RuleQuery {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// Whether a run looks at everything or only at what the scope tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Full,
    Scoped,
}

/// A payment `p` that has not been reversed.
const LIVE: &str =
    "p.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)";

/// The last day of payment `p`'s period (program `g`); a one-off is dated by its year.
const END: &str = "(p.period_start + CASE g.period_kind WHEN 'monthly' THEN interval '1 month' \
     WHEN 'quarterly' THEN interval '3 months' ELSE interval '1 year' END - interval '1 day')::date";

fn scope(reach: Reach) -> &'static str {
    match reach {
        Reach::Full => "TRUE",
        // The scope's payments, gathered through the person and household indexes before
        // the rules run: one small semi-join per rule instead of a scan of all payments.
        Reach::Scoped => "p.id IN (SELECT id FROM check_scope_payments)",
    }
}

/// Fact `f` holds during payment `p`'s period.
fn holds(f: &str) -> String {
    format!("{f}.since <= {END} AND ({f}.until IS NULL OR {f}.until >= p.period_start)")
}

fn texts(list: &Option<Vec<String>>) -> Arg {
    Arg::Texts(list.clone().unwrap_or_default())
}

/// `p.program_code` is one of `$n` (an empty list: any program).
fn any_program(n: usize) -> String {
    format!("(cardinality(${n}::text[]) = 0 OR p.program_code = ANY(${n}::text[]))")
}

/// Payments `p` as a payment-driven rule starts from: all of them, or the scope's (read
/// through their ids first, so the plan starts from the few rather than filtering the many).
fn driving(reach: Reach) -> &'static str {
    match reach {
        Reach::Full => "payments p",
        Reach::Scoped => "check_scope_payments sp JOIN payments p ON p.id = sp.id",
    }
}

/// The query of `rule` for a run of `reach`.
pub fn rule_query(rule: &Rule, reach: Reach) -> RuleQuery {
    let p: &Params = &rule.params;
    let scope = scope(reach);
    let pp = driving(reach);
    let person_program = "encode(p.person_key, 'hex') || ':' || p.program_code";
    match rule.id {
        RuleId::PaidAfterDeath | RuleId::PaidAfterMovingOut => {
            let (kind, date) = if rule.id == RuleId::PaidAfterDeath {
                ("deceased", "died_on")
            } else {
                ("moved_out", "moved_out_on")
            };
            RuleQuery {
                sql: format!(
                    "SELECT {person_program} AS dedupe_key, p.id AS payment_id, f.fact_id,
                            jsonb_build_object('{date}', f.since, 'destination', f.attrs->>'destination') AS detail
                     FROM facts f JOIN payments p ON p.person_key = f.person_key
                     WHERE f.kind = '{kind}' AND {LIVE} AND {programs}
                       AND p.period_start >= (date_trunc('month', f.since) + make_interval(months => 1 + $2::int))::date
                       AND {scope}",
                    programs = any_program(1),
                ),
                args: vec![texts(&p.programs), Arg::Int(p.grace_months.unwrap_or(0).into())],
            }
        }
        RuleId::PublicEmployee => RuleQuery {
            // From the employees (tens of thousands in a county) to their own and their
            // households' payments of the listed programs, each looked up through the
            // slot indexes: hash-joining every payment of the county instead took 9 s.
            sql: format!(
                "SELECT {person_program} AS dedupe_key, p.id AS payment_id, f.fact_id,
                        jsonb_build_object('employer', f.attrs->>'employer', 'who', 'self') AS detail
                 FROM facts f
                 CROSS JOIN LATERAL (SELECT p.* FROM payments p
                                     WHERE p.person_key = f.person_key AND p.program_code = ANY($1::text[])
                                       AND p.kind = 'payment' AND {scope} OFFSET 0) p
                 JOIN programs g ON g.code = p.program_code
                 WHERE f.kind = 'public_employee' AND {LIVE} AND {f_holds}
                 UNION ALL
                 SELECT 'household:' || p.household_code || ':' || p.program_code, p.id, e.fact_id,
                        jsonb_build_object('employer', e.employer, 'who', 'household_member')
                 FROM (SELECT f.fact_id, f.person_key, f.attrs->>'employer' AS employer,
                              greatest(f.since, m.since) AS since,
                              least(f.until, m.until) AS until, m.attrs->>'household_code' AS household_code
                       FROM facts f
                       JOIN facts m ON m.person_key = f.person_key AND m.kind = 'household_member'
                       WHERE f.kind = 'public_employee'
                         AND (m.until IS NULL OR m.until >= f.since)
                         AND (f.until IS NULL OR f.until >= m.since)
                       OFFSET 0) e
                 CROSS JOIN LATERAL (SELECT p.* FROM payments p
                                     WHERE p.household_code = e.household_code COLLATE \"C\"
                                       AND p.program_code = ANY($2::text[])
                                       AND p.kind = 'payment' AND {scope} OFFSET 0) p
                 JOIN programs g ON g.code = p.program_code
                 WHERE p.person_key <> e.person_key AND {LIVE} AND {e_holds}",
                f_holds = holds("f"),
                e_holds = holds("e"),
            ),
            args: vec![texts(&p.programs), texts(&p.household_programs)],
        },
        RuleId::CadreFavoritism => RuleQuery {
            sql: format!(
                "SELECT {person_program} AS dedupe_key, p.id AS payment_id, c.fact_id,
                        jsonb_build_object('relation', '本人', 'post', c.attrs->>'post',
                                           'cadre_village', c.attrs->>'village_code') AS detail
                 FROM facts c JOIN payments p ON p.person_key = c.person_key
                 JOIN programs g ON g.code = p.program_code
                 WHERE c.kind = 'village_cadre' AND p.program_code = ANY($1::text[]) AND {LIVE}
                   AND {c_holds} AND {scope}
                 UNION ALL
                 SELECT {person_program}, p.id, c.fact_id,
                        jsonb_build_object('relation', r.attrs->>'relation', 'post', c.attrs->>'post',
                                           'cadre_village', c.attrs->>'village_code')
                 FROM facts r
                 JOIN facts c ON c.kind = 'village_cadre'
                      AND c.person_key = decode(r.attrs->>'cadre_key', 'hex')
                 JOIN payments p ON p.person_key = r.person_key
                 JOIN programs g ON g.code = p.program_code
                 WHERE r.kind = 'cadre_relative' AND r.attrs->>'cadre_key' ~ '^[0-9a-f]{{64}}$'
                   AND p.program_code = ANY($1::text[]) AND {LIVE}
                   AND {c_holds} AND {scope}",
                c_holds = holds("c"),
            ),
            args: vec![texts(&p.programs)],
        },
        RuleId::VehicleOwner => RuleQuery {
            sql: format!(
                "SELECT {person_program} AS dedupe_key, p.id AS payment_id, f.fact_id,
                        jsonb_build_object('vehicle_type', f.attrs->>'vehicle_type', 'registered_on', f.since) AS detail
                 FROM facts f JOIN payments p ON p.person_key = f.person_key
                 JOIN programs g ON g.code = p.program_code
                 WHERE f.kind = 'vehicle_owner' AND p.program_code = ANY($1::text[]) AND {LIVE}
                   AND {f_holds} AND {scope}
                   AND NOT EXISTS (SELECT 1 FROM unnest($2::text[]) x
                                   WHERE x <> '' AND strpos(coalesce(f.attrs->>'vehicle_type', ''), x) > 0)",
                f_holds = holds("f"),
            ),
            args: vec![texts(&p.programs), texts(&p.exempt_vehicle_types)],
        },
        RuleId::CompanyOwner => RuleQuery {
            sql: format!(
                "SELECT {person_program} AS dedupe_key, p.id AS payment_id, f.fact_id,
                        jsonb_build_object('company', f.attrs->>'company', 'role', f.attrs->>'role') AS detail
                 FROM facts f JOIN payments p ON p.person_key = f.person_key
                 JOIN programs g ON g.code = p.program_code
                 WHERE f.kind = 'company_owner' AND p.program_code = ANY($1::text[]) AND {LIVE}
                   AND {f_holds} AND {scope}
                   AND EXISTS (SELECT 1 FROM unnest($2::text[]) x
                               WHERE x <> '' AND strpos(coalesce(f.attrs->>'role', ''), x) > 0)",
                f_holds = holds("f"),
            ),
            args: vec![texts(&p.programs), texts(&p.company_roles)],
        },
        RuleId::PropertyOwner => RuleQuery {
            sql: format!(
                "SELECT {person_program} AS dedupe_key, p.id AS payment_id, f.fact_id,
                        jsonb_build_object('area_centi_m2', f.attrs->>'area_centi_m2') AS detail
                 FROM facts f JOIN payments p ON p.person_key = f.person_key
                 JOIN programs g ON g.code = p.program_code
                 WHERE f.kind = 'property_owner' AND p.program_code = ANY($1::text[]) AND {LIVE}
                   AND {f_holds} AND {scope}
                   AND coalesce(f.attrs->>'area_centi_m2', '') ~ '^[0-9]{{1,12}}$'
                   AND (f.attrs->>'area_centi_m2')::bigint > $2 * 100",
                f_holds = holds("f"),
            ),
            args: vec![texts(&p.programs), Arg::Int(p.min_area_m2.unwrap_or(0))],
        },
        RuleId::PaidTwice => {
            // Twice is counted per person, or per household for a per-household program;
            // a per-household one-off grant is the grant rule's (any year, not one period).
            // The slots holding more than one entry of any kind come first, streamed from
            // the person and household slot indexes (no payment is read and nothing hashed:
            // the run tells the planner not to hash for this rule); only their live
            // payments are then read and counted again, so a payment and its reversal are
            // not twice.
            let programs = any_program(1);
            let slots = |who: &str, per_household: &str| {
                format!(
                    "SELECT p.id, p.person_key, p.household_code, p.program_code, p.period,
                            count(*) OVER (PARTITION BY p.{who}, p.program_code, p.period) AS entries
                     FROM (SELECT p.{who}, p.program_code, p.period_start
                           FROM {pp} WHERE {scope} AND p.program_code = ANY(ARRAY(
                             SELECT g.code FROM programs g WHERE {per_household}))
                           GROUP BY 1, 2, 3 HAVING count(*) > 1 OFFSET 0) s
                     CROSS JOIN LATERAL (
                       SELECT p.* FROM payments p
                       WHERE p.{who} = s.{who} AND p.program_code = s.program_code
                         AND p.period_start = s.period_start AND {LIVE} AND {programs}
                       OFFSET 0) p"
                )
            };
            let person = slots("person_key", "NOT g.per_household");
            let household = slots("household_code", "g.per_household AND g.period_kind <> 'one_off'");
            RuleQuery {
                sql: format!(
                    "SELECT {person_program} || ':' || p.period AS dedupe_key, p.id AS payment_id,
                            NULL::bigint AS fact_id, '{{}}'::jsonb AS detail
                     FROM ({person}) p WHERE p.entries > 1
                     UNION ALL
                     SELECT 'household:' || p.household_code || ':' || p.program_code || ':' || p.period,
                            p.id, NULL::bigint, '{{}}'::jsonb
                     FROM ({household}) p WHERE p.entries > 1"
                ),
                args: vec![texts(&p.programs)],
            }
        }
        RuleId::ExclusivePrograms => {
            // Per person in the same period; for two per-household one-off grants, per
            // household whenever paid. One branch per pair (and direction: in a scoped run
            // the scoped payment may be of either program), each a join the planner can hash
            // on its two programs' payments. The pair's order in the rules does not change
            // the finding's key.
            let pairs = p.pairs.clone().unwrap_or_default();
            let mut branches = Vec::new();
            let mut args = Vec::new();
            for [a, b] in pairs {
                let (na, nb) = (args.len() + 1, args.len() + 2);
                args.push(Arg::Text(a));
                args.push(Arg::Text(b));
                let directions: &[(usize, usize)] = match reach {
                    Reach::Full => &[(na, nb)],
                    Reach::Scoped => &[(na, nb), (nb, na)],
                };
                for &(x, y) in directions {
                    let grants = format!(
                        "(SELECT count(*) = 2 AND bool_and(per_household AND period_kind = 'one_off')
                          FROM programs WHERE code IN (${x}, ${y}))"
                    );
                    let pair = format!("least(${x}::text, ${y}::text) || ':' || greatest(${x}::text, ${y}::text)");
                    branches.push(format!(
                        "SELECT encode(p.person_key, 'hex') || ':' || {pair} AS dedupe_key,
                                p.id AS pa, q.id AS pb, q.program_code AS other
                         FROM {pp} JOIN payments q ON q.person_key = p.person_key
                              AND q.period_start = p.period_start
                         WHERE p.program_code = ${x} AND q.program_code = ${y} AND NOT {grants}
                           AND {LIVE} AND {scope}
                           AND q.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = q.id)
                         UNION ALL
                         SELECT 'household:' || p.household_code || ':' || {pair}, p.id, q.id, q.program_code
                         FROM {pp} JOIN payments q ON q.household_code = p.household_code
                         WHERE p.program_code = ${x} AND q.program_code = ${y} AND {grants}
                           AND {LIVE} AND {scope}
                           AND q.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = q.id)"
                    ));
                }
            }
            if branches.is_empty() {
                branches.push(
                    "SELECT NULL::text, NULL::bigint, NULL::bigint, NULL::text WHERE false".to_owned(),
                );
            }
            RuleQuery {
                sql: format!(
                    "WITH pairs (dedupe_key, pa, pb, other) AS MATERIALIZED ({})
                     SELECT dedupe_key, pa AS payment_id, NULL::bigint AS fact_id,
                            jsonb_build_object('other_program', other) AS detail FROM pairs
                     UNION ALL
                     SELECT dedupe_key, pb, NULL::bigint, jsonb_build_object('other_program', other) FROM pairs",
                    branches.join("\n UNION ALL\n")
                ),
                args,
            }
        }
        RuleId::GrantRepeated => RuleQuery {
            // A later grant `b` repeats an earlier `a` of the same program when both went to
            // one household, or when someone in b's household when b was paid was in a's
            // household when a was paid (a household that split). Grants are few: the rule
            // always looks at all of them.
            sql: format!(
                "WITH g AS (SELECT p.id, p.household_code, p.program_code, p.period_start,
                                   p.person_key, {END} AS period_end
                            FROM payments p JOIN programs g ON g.code = p.program_code
                            WHERE p.program_code = ANY($1::text[]) AND {LIVE}),
                     -- Each grant's household members when it was paid, looked up grant by
                     -- grant through the membership index (a join lets the planner sort
                     -- every membership of the county instead).
                     members AS MATERIALIZED (
                       SELECT g.id, g.person_key AS member, g.program_code, g.period_start,
                              g.household_code FROM g
                       UNION
                       SELECT g.id, m.person_key, g.program_code, g.period_start, g.household_code
                       FROM g CROSS JOIN LATERAL (
                         SELECT m.person_key FROM facts m
                         WHERE m.kind = 'household_member'
                           -- payments' codes compare bytewise (collation C); the
                           -- membership index is on the attribute's default collation.
                           AND m.attrs->>'household_code' = g.household_code COLLATE \"default\"
                           AND m.since <= g.period_end AND (m.until IS NULL OR m.until >= g.period_start)
                         OFFSET 0) m),
                     -- Grants that shared a member: one join of the few memberships on the
                     -- member (joining the grants to each other first pairs every grant of
                     -- the county with every other: 23 s at county scale, against 0.1 s).
                     pairs AS (
                       SELECT a.id AS aid, b.id AS bid, a.household_code AS first_household
                       FROM g a JOIN g b ON b.program_code = a.program_code
                            AND (a.period_start, a.id) < (b.period_start, b.id)
                            AND b.household_code = a.household_code
                       UNION
                       SELECT a.id, b.id, a.household_code
                       FROM members a JOIN members b ON b.member = a.member
                            AND b.program_code = a.program_code
                            AND (a.period_start, a.id) < (b.period_start, b.id))
                 SELECT 'grant:' || bid AS dedupe_key, x.id AS payment_id, NULL::bigint AS fact_id,
                        jsonb_build_object('first_household', first_household) AS detail
                 FROM pairs CROSS JOIN LATERAL (VALUES (aid), (bid)) AS x(id)"
            ),
            args: vec![texts(&p.programs)],
        },
        RuleId::AboveStandard => {
            let list = p.bands.clone().unwrap_or_default();
            // The lowest band of each banded program: a payment at or below its program's
            // lowest limit (this, or the ceiling) cannot be above any standard.
            let mut floors = serde_json::Map::new();
            for band in &list {
                let floor = floors
                    .get(&band.program)
                    .and_then(serde_json::Value::as_i64)
                    .map_or(band.max_fen, |f| f.min(band.max_fen));
                floors.insert(band.program.clone(), floor.into());
            }
            let bands = serde_json::to_value(list).expect("bands serialise");
            // So one pass over the payments (parallel: no CTE, the bands inline) keeps the
            // few above their program's lowest limit, and only those are looked at again:
            // a banded program's need the birth date (one lookup each through the person
            // index), then the band of that age.
            RuleQuery {
                sql: format!(
                    "SELECT {person_program} AS dedupe_key, p.id AS payment_id, b.fact_id,
                            CASE WHEN p.banded THEN jsonb_build_object('standard_fen', s.max_fen, 'age', a.age)
                                 ELSE jsonb_build_object('standard_fen', s.max_fen) END AS detail
                     FROM (SELECT p.id, p.person_key, p.program_code, p.period_start, p.amount_fen,
                                  $3::jsonb ? p.program_code AS banded, g.ceiling_fen
                           FROM {pp} JOIN programs g ON g.code = p.program_code
                           WHERE p.amount_fen > least(g.ceiling_fen, ($3::jsonb ->> p.program_code)::bigint)
                             AND p.kind = 'payment' AND {programs} AND {scope}
                           OFFSET 0) p
                     LEFT JOIN LATERAL (SELECT b.fact_id, b.since FROM facts b
                                        WHERE p.banded AND b.person_key = p.person_key AND b.kind = 'born'
                                        ORDER BY b.fact_id LIMIT 1) b ON TRUE
                     CROSS JOIN LATERAL (SELECT date_part('year', age(p.period_start, b.since))::int AS age) a
                     CROSS JOIN LATERAL (
                         SELECT CASE WHEN p.banded THEN
                                  coalesce((SELECT max(x.max_fen)
                                            FROM jsonb_to_recordset($2::jsonb)
                                                 AS x(program text, min_age int, max_age int, max_fen bigint)
                                            WHERE x.program = p.program_code
                                              AND a.age BETWEEN x.min_age AND coalesce(x.max_age, 1000)),
                                           p.ceiling_fen)
                                ELSE p.ceiling_fen END AS max_fen) s
                     WHERE p.amount_fen > s.max_fen
                       AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)",
                    programs = any_program(1),
                ),
                args: vec![
                    texts(&p.programs),
                    Arg::Json(bands),
                    Arg::Json(serde_json::Value::Object(floors)),
                ],
            }
        }
        RuleId::AgeOutOfRange => {
            let ages =
                serde_json::to_value(p.ages.clone().unwrap_or_default()).expect("ages serialise");
            // Age only grows: a person whose first and last payment of a program are both
            // inside its range has none outside it. So the program's payments are first
            // reduced to each person's first and last period (one parallel pass, a group per
            // person), and only the persons outside at either end have their payments read
            // again, through the person index. (The ranges inline, not a CTE: a CTE keeps
            // the pass from parallel workers.)
            RuleQuery {
                sql: format!(
                    "SELECT {person_program} AS dedupe_key, p.id AS payment_id, s.fact_id,
                            jsonb_build_object('age', a.age, 'min_age', s.min_age, 'max_age', s.max_age) AS detail
                     FROM (SELECT span.person_key, span.program_code, b.fact_id, b.since AS born,
                                  x.min_age, x.max_age
                           FROM (SELECT p.person_key, p.program_code,
                                        min(p.period_start) AS first, max(p.period_start) AS last
                                 FROM {pp}
                                 WHERE p.program_code IN (SELECT x.program FROM jsonb_to_recordset($1::jsonb)
                                                                                AS x(program text))
                                   AND p.kind = 'payment' AND {scope}
                                 GROUP BY 1, 2) span
                           JOIN jsonb_to_recordset($1::jsonb) AS x(program text, min_age int, max_age int)
                             ON x.program = span.program_code
                           JOIN facts b ON b.person_key = span.person_key AND b.kind = 'born'
                           WHERE date_part('year', age(span.first, b.since)) < coalesce(x.min_age, -1)
                              OR date_part('year', age(span.last, b.since)) > coalesce(x.max_age, 1000)
                           OFFSET 0) s
                     CROSS JOIN LATERAL (SELECT p.* FROM payments p
                                         WHERE p.person_key = s.person_key AND p.program_code = s.program_code
                                           AND p.kind = 'payment' AND {scope}
                                         OFFSET 0) p
                     CROSS JOIN LATERAL (SELECT date_part('year', age(p.period_start, s.born))::int AS age) a
                     WHERE (a.age < coalesce(s.min_age, -1) OR a.age > coalesce(s.max_age, 1000))
                       AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)"
                ),
                args: vec![Arg::Json(ages)],
            }
        }
        RuleId::SharedBankAccount => {
            let accounts = match reach {
                Reach::Full => "TRUE",
                Reach::Scoped => {
                    "p.bank_hash = ANY(ARRAY(SELECT DISTINCT q.bank_hash FROM check_scope_payments s
                                             JOIN payments q ON q.id = s.id WHERE q.bank_hash IS NOT NULL))"
                }
            };
            // Accounts paid to more than one household are found by one grouping per
            // account (its lowest and highest household differ; parallel), and only their
            // live payments are read again, through the account index, and counted exactly.
            RuleQuery {
                sql: format!(
                    "WITH candidates AS MATERIALIZED (
                       SELECT p.bank_hash FROM payments p
                       WHERE p.bank_hash IS NOT NULL AND p.kind = 'payment' AND {accounts}
                       GROUP BY p.bank_hash
                       HAVING $1 <= 1 OR min(p.household_code) <> max(p.household_code)),
                     paid AS MATERIALIZED (
                       SELECT p.id, p.bank_hash, p.household_code, p.bank_masked FROM payments p
                       WHERE p.bank_hash = ANY(ARRAY(SELECT bank_hash FROM candidates)) AND {LIVE}),
                     shared AS (
                       SELECT bank_hash, count(DISTINCT household_code) AS households
                       FROM paid GROUP BY bank_hash HAVING count(DISTINCT household_code) >= $1)
                     SELECT 'bank:' || encode(p.bank_hash, 'hex') AS dedupe_key, p.id AS payment_id,
                            NULL::bigint AS fact_id,
                            jsonb_build_object('households', shared.households, 'bank_account', p.bank_masked) AS detail
                     FROM shared JOIN paid p ON p.bank_hash = shared.bank_hash"
                ),
                args: vec![Arg::Int(p.min_households.unwrap_or(2))],
            }
        }
    }
}
