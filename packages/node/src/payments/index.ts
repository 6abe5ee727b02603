/** Payments for answers (x402 v2, docs/api.md "Payments"): prices, verification, journal, settlement. */
export { type JournalEntry, openPaymentJournal, type PaymentJournal, type StoredAnswer } from './journal.js';
export {
  createPaymentService,
  type PaymentCheck,
  type PaymentOutcome,
  type PaymentService,
  type PaymentSettler,
  type PricedModel,
  type PriceView,
  paymentError,
  priceOf,
  priceView,
  requestKeyOf,
  VALIDITY_MARGIN_SECONDS,
  type VerifiedPayment,
} from './payments.js';
