-- A named person's payments are read when staff open a report, as that
-- reader (issue 10, point 6); the copies triage stored are removed.
-- Village/program totals, which are public, stay.
UPDATE reports SET ledger_facts = ledger_facts - 'person_payments'
WHERE ledger_facts ? 'person_payments';
