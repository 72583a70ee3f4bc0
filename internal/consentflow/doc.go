// Package consentflow is Ponte's consent flow as the account holder (detentora):
// everything from an initiator's authorization request reaching Ponte's
// authorization server to the user's decision going back to the initiator.
//
//   - The journey step (Handler.Authorize, the authorization server's
//     oidc.JourneyFunc) opens the request's interaction and sends the user
//     to the holder partner's app by deep link, to the desktop hand-off page
//     (a QR code for the phone; the page polls the journey's status), or,
//     when the partner has no app, to the WebView in the same browser.
//   - Consent-flow tickets (seed 000: model.go, service.go, store.go,
//     http.go) are the 60-second, one-use credentials a partner's app gets
//     for a deep link's request_uri (Ponte issues one itself when the
//     partner has no app); one opens the WebView and its session.
//   - The WebView (journey_page.go) is where the user logs in, reviews the
//     consent, chooses the account(s), and approves or cancels.
//   - Interactions (seed 002: interactions*.go, device.go) are the login,
//     consent and cancel steps, taken by the WebView or by the partner's
//     backend through the interaction API; each step is stored with the
//     user's device and recorded for the PCM (StepRecorder) in the same
//     transaction as the state change.
//
// The flow knows no kind of consent: payment, sweeping and data-sharing
// consents plug in through ConsentKind from their own packages
// (payments.JourneyKind, recurring.JourneyKind, dataconsents.JourneyKind),
// and a test holds holder to importing none of them. Services return the
// errors declared here; the handlers map them to each API family's error
// shape (Bankly for tickets, Open Finance for interactions, OAuth errors for
// the journey step).
package consentflow
