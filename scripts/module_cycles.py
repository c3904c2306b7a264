#!/usr/bin/env python3
"""Import cycles between the top-level modules of each crate's src/ (non-test code, comments
ignored). Usage: scripts/module_cycles.py [ROOT]; exits 1 when a crate has a cycle."""
import os,re,sys,itertools
root=sys.argv[1] if len(sys.argv)>1 else '.'
bad=False
for crate in sorted(os.listdir(root)):
    src=os.path.join(root,crate,'src')
    if not os.path.isdir(src): continue
    mods={}
    for dp,_,fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(dp,f)
            rel=os.path.relpath(p,src)[:-3]
            parts=rel.split('/')
            if parts[-1]=='mod': parts=parts[:-1]
            name=parts[0] if parts and parts[0] not in('lib','main') else None
            if not name: continue
            txt=open(p).read()
            txt=txt.split('#[cfg(test)]')[0]
            txt='\n'.join(l for l in txt.split('\n') if not l.lstrip().startswith('//'))
            deps=set(re.findall(r'crate::(\w+)',txt))
            mods.setdefault(name,set()).update(d for d in deps if d!=name)
    # find cycles between top-level modules
    names=set(mods)
    graph={k:{d for d in v if d in names} for k,v in mods.items()}
    # tarjan SCC
    idx={};low={};st=[];on=set();out=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in graph[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: out.append(comp)
    for v in graph:
        if v not in idx: sc(v)
    print(crate, out if out else 'no cycles')
    bad = bad or bool(out)
sys.exit(1 if bad else 0)
