package auth

import "context"

// ByID returns the application whose id (not client_id) is id: one read
// where Get, which tries client_id first, takes two for an id. Holder
// partners are looked up by id on the WebView's and the journey's paths.
func (s *Applications) ByID(ctx context.Context, id string) (*Application, error) {
	a, _, err := s.getBy(ctx, "id", id)
	return a, err
}
