namespace ChronoGuard.Policy;

/// <summary>
/// Whether a name is a public suffix, one under which unrelated parties register names, so that
/// <c>*.</c> + it would allow strangers' hosts: a single label (<c>com</c>), a two-label ccTLD second
/// level by the common registry convention (<c>co.uk</c>, <c>com.au</c>, <c>ne.jp</c>), or one of the
/// multi-label suffixes of the Public Suffix List where agents commonly meet them (hosting and storage
/// platforms: <c>github.io</c>, <c>s3.amazonaws.com</c>). A small built-in list on purpose: the full
/// list changes weekly and is not shipped; a name missing here is only a name a draft may fold into.
/// </summary>
internal static class PublicSuffixes
{
    // The second-level labels ccTLD registries use for their public categories (co.uk, com.au, or.jp, gob.mx).
    private static readonly HashSet<string> CcSecondLevels = new(StringComparer.Ordinal)
    {
        "ac", "co", "com", "edu", "go", "gob", "gov", "govt", "ltd", "mil", "ne", "net", "nic", "nom", "or", "org", "plc", "sch",
    };

    // From https://publicsuffix.org/list/public_suffix_list.dat (ICANN and PRIVATE sections).
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "appspot.com", "azurewebsites.net", "blob.core.windows.net", "cloudapp.net", "cloudfront.net",
        "elasticbeanstalk.com", "firebaseapp.com", "fly.dev", "github.io", "githubusercontent.com", "gitlab.io",
        "herokuapp.com", "netlify.app", "ngrok.io", "ngrok-free.app", "onrender.com", "pages.dev", "r2.dev",
        "s3.amazonaws.com", "trycloudflare.com", "vercel.app", "web.app", "workers.dev", "azurestaticapps.net",
        "readthedocs.io", "blogspot.com", "amplifyapp.com", "cloudflarestorage.com",
    };

    /// <summary><paramref name="name"/> is lowercase ASCII without a trailing dot.</summary>
    public static bool IsPublicSuffix(string name)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0 || Known.Contains(name))
        {
            return true;
        }

        // Two labels, the last a two-letter country code: co.uk, com.au.
        var last = name.LastIndexOf('.');
        return dot == last && name.Length - last - 1 == 2 && CcSecondLevels.Contains(name[..dot]);
    }
}
