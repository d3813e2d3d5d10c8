using System.Security.Cryptography;

namespace ChronoGuard.Audit;

/// <summary>Reads checkpoints.jsonl and keeps the lines whose signature verifies under a public key.</summary>
internal static class CheckpointFile
{
    public sealed record Contents(List<Checkpoint> Valid, List<string> Rejected);

    public static Contents Read(string file, ECDsa publicKey)
    {
        var valid = new List<Checkpoint>();
        var rejected = new List<string>();
        var line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }

            var checkpoint = Checkpoint.Parse(text, out var problem);
            if (checkpoint is null)
            {
                rejected.Add($"line {line}: {problem}");
                continue;
            }

            byte[] signature;
            try
            {
                signature = Convert.FromBase64String(checkpoint.Signature);
            }
            catch (FormatException)
            {
                rejected.Add($"line {line}: sig is not base64");
                continue;
            }

            if (!publicKey.VerifyData(checkpoint.Message(), signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))
            {
                rejected.Add($"line {line}: the signature does not verify with this public key");
                continue;
            }

            valid.Add(checkpoint);
        }

        return new Contents(valid, rejected);
    }

    /// <summary>Every valid checkpoint as an anchor; only the newest must be reached.</summary>
    public static List<AuditVerifier.Anchor> Anchors(List<Checkpoint> valid)
    {
        var newest = valid.Count == 0 ? -1 : valid.Max(c => c.Seq);
        var anchors = new List<AuditVerifier.Anchor>();
        foreach (var c in valid)
        {
            anchors.Add(new AuditVerifier.Anchor(c.Seq, Convert.FromHexString(c.Hash), $"signed checkpoint ({c.Time})", Required: c.Seq == newest));
        }

        return anchors;
    }
}
