//! Household membership as dated history (户籍变动), kept as `household_member` facts
//! (the view `household_members` shows them as spans), and each person's `born` fact:
//! what a persons import changes besides the persons themselves.
//!
//! A person's first span starts at birth — before the register knew them, it knew of
//! no other household. A change the register sees later (another household, or another
//! relation to the head) closes the open span the day before the import and opens a
//! new one on the import day; a second change on the same day corrects that day's span.

use chrono::NaiveDate;

use super::REGISTER_SOURCE;

/// A registered person's household as a persons file states it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub person_id: i64,
    pub household_code: &'a str,
    pub relation: &'a str,
    pub birth_date: NaiveDate,
}

/// Records `members`' births and households as of `today`, in the caller's
/// transaction, which must hold [`super::WRITE_LOCK`].
pub async fn record_memberships(
    tx: &mut sqlx::PgConnection,
    members: &[Member<'_>],
    today: NaiveDate,
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = members.iter().map(|m| m.person_id).collect();
    let households: Vec<&str> = members.iter().map(|m| m.household_code).collect();
    let relations: Vec<&str> = members.iter().map(|m| m.relation).collect();
    let births: Vec<NaiveDate> = members.iter().map(|m| m.birth_date).collect();

    sqlx::query(
        "INSERT INTO person_facts (person_id, kind, since, source)
         SELECT t.id, 'born', t.birth, $3 FROM UNNEST($1::bigint[], $2::date[]) AS t (id, birth)
         ON CONFLICT (person_id, kind, natural_key) DO NOTHING",
    )
    .bind(&ids)
    .bind(&births)
    .bind(REGISTER_SOURCE)
    .execute(&mut *tx)
    .await?;

    // A span opened today that no longer holds is corrected, not closed: it never held
    // for a whole day.
    sqlx::query(
        "UPDATE person_facts f
         SET attrs = jsonb_build_object('household_code', t.household, 'relation', t.relation)
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t (id, household, relation)
         WHERE f.person_id = t.id AND f.kind = 'household_member' AND f.until IS NULL
           AND f.since = $4
           AND (f.attrs->>'household_code', f.attrs->>'relation') IS DISTINCT FROM (t.household, t.relation)",
    )
    .bind(&ids)
    .bind(&households)
    .bind(&relations)
    .bind(today)
    .execute(&mut *tx)
    .await?;

    sqlx::query(
        "UPDATE person_facts f SET until = $4 - 1
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t (id, household, relation)
         WHERE f.person_id = t.id AND f.kind = 'household_member' AND f.until IS NULL
           AND f.since < $4
           AND (f.attrs->>'household_code', f.attrs->>'relation') IS DISTINCT FROM (t.household, t.relation)",
    )
    .bind(&ids)
    .bind(&households)
    .bind(&relations)
    .bind(today)
    .execute(&mut *tx)
    .await?;

    // Whoever has no open span now gets one: since birth if they never had one, else
    // since today (their previous span just closed).
    sqlx::query(
        "INSERT INTO person_facts (person_id, kind, since, source, attrs)
         SELECT t.id, 'household_member',
                CASE WHEN EXISTS (SELECT 1 FROM person_facts h
                                  WHERE h.person_id = t.id AND h.kind = 'household_member')
                     THEN $5 ELSE t.birth END,
                $6, jsonb_build_object('household_code', t.household, 'relation', t.relation)
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::date[]) AS t (id, household, relation, birth)
         WHERE NOT EXISTS (SELECT 1 FROM person_facts o
                           WHERE o.person_id = t.id AND o.kind = 'household_member' AND o.until IS NULL)",
    )
    .bind(&ids)
    .bind(&households)
    .bind(&relations)
    .bind(&births)
    .bind(today)
    .bind(REGISTER_SOURCE)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
