// Hiding credentials in locations (URLs, libpq conninfo strings) before they are printed, logged
// or returned: one rule for banners, `ferry config show`, `run list`, doctor and error messages.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

// Replaces with "****":
//   - the password in scheme://user:password@host (the user stays);
//   - the whole user part of scheme://user@host when `userinfo_is_secret` (Redis URLs carry the
//     password there: redis://secret@host);
//   - the value of every query parameter or conninfo key that names a credential: password,
//     passwd, pwd, pass, token, access_token, auth, secret, sig, signature, key, api_key,
//     apikey, client_secret, sslpassword (case-insensitive);
// and leaves everything else, plain paths included, as it is.
std::string MaskCredentials(std::string_view text, bool userinfo_is_secret = false);

// MaskCredentials applied to every URL in a text that may hold several, or words around them
// (a handler declaration "charge=https://user:pw@host/ secret-env=KEY; mail=https://..."): each
// word, between white space and ';', that holds "://" is masked as one location.
std::string MaskUrlsInText(std::string_view text);

}  // namespace ferry
