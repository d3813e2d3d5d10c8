namespace ChronoGuard.Policy;

/// <summary>
/// The <c>extends</c> graph: checked acyclic with one topological sort (linear in policies plus
/// edges, no recursion, so a 50,000-deep chain neither costs quadratic time nor overflows the stack),
/// then asked for the lineage of each policy an agent names.
/// </summary>
internal sealed class LineageDag
{
    private readonly int[][] _parents;

    private LineageDag(int[][] parents, int[] extendersFirst)
    {
        _parents = parents;
        ExtendersFirst = extendersFirst;
    }

    /// <summary>Every policy once, each before every policy it extends.</summary>
    public int[] ExtendersFirst { get; }

    public IReadOnlyList<int> Parents(int policy) => _parents[policy];

    /// <exception cref="PolicyProblem">The graph has a cycle (named from the first policy on it).</exception>
    public static LineageDag Build(int[][] parents, IReadOnlyList<string> names)
    {
        var n = parents.Length;
        var extenders = new int[n];
        foreach (var list in parents)
        {
            foreach (var p in list)
            {
                extenders[p]++;
            }
        }

        // Kahn's algorithm over "c extends p" edges: a policy is ready once all its extenders are out.
        var order = new int[n];
        var count = 0;
        for (var i = 0; i < n; i++)
        {
            if (extenders[i] == 0)
            {
                order[count++] = i;
            }
        }

        for (var head = 0; head < count; head++)
        {
            foreach (var p in parents[order[head]])
            {
                if (--extenders[p] == 0)
                {
                    order[count++] = p;
                }
            }
        }

        if (count < n)
        {
            throw Cycle(parents, names, extenders);
        }

        return new LineageDag(parents, order);
    }

    /// <summary>
    /// Self first, then ancestors depth-first in the order written, each once (what "merged in
    /// topological order" means for the nearest time window, limits and rule order).
    /// </summary>
    public int[] Lineage(int policy, bool[] seen)
    {
        var order = new List<int>();
        var stack = new Stack<int>();
        stack.Push(policy);
        while (stack.TryPop(out var n))
        {
            if (seen[n])
            {
                continue;
            }

            seen[n] = true;
            order.Add(n);
            var parents = _parents[n];
            for (var i = parents.Length - 1; i >= 0; i--)
            {
                if (!seen[parents[i]])
                {
                    stack.Push(parents[i]);
                }
            }
        }

        foreach (var n in order)
        {
            seen[n] = false;
        }

        return [.. order];
    }

    private static PolicyProblem Cycle(int[][] parents, IReadOnlyList<string> names, int[] extenders)
    {
        // Every policy Kahn left behind still has an extender that was left behind too, so walking
        // from one extender to the next must repeat a policy: that stretch is a cycle.
        var leftExtenders = new List<int>?[parents.Length];
        for (var c = 0; c < parents.Length; c++)
        {
            foreach (var p in parents[c])
            {
                if (extenders[c] > 0 && extenders[p] > 0)
                {
                    (leftExtenders[p] ??= []).Add(c);
                }
            }
        }

        var path = new List<int>();
        var at = new Dictionary<int, int>();
        var n = Array.FindIndex(extenders, e => e > 0);
        while (!at.ContainsKey(n))
        {
            at[n] = path.Count;
            path.Add(n);
            n = leftExtenders[n]![0];
        }

        // The walk went against the arrows; reverse it and start from the policy written first.
        var cycle = path[at[n]..];
        cycle.Reverse();
        var first = cycle.IndexOf(cycle.Min());
        cycle = [.. cycle[first..], .. cycle[..first], cycle[first]];
        return new PolicyProblem($"$.policies[{cycle[0]}].extends", "cycle: " + string.Join(" -> ", cycle.ConvertAll(i => names[i])));
    }
}
