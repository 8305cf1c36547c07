'''The live dashboard: one self-contained page (inline CSS and JavaScript, no CDN, no
build step), served by the control listener at ``/`` with the API's authorisation.

It loads ``/history`` for the chart, then follows ``/live`` (server-sent
events: one ``sample`` per interval, one ``log`` per event).  Each link card
carries ``data-link`` and its numbers ``data-field``/``data-raw`` attributes
holding the sample's exact values, so a browser test can compare the page
with the API; the sample number shown is ``#seq``.  Role buttons and
down/up call the same API as ``tquic bond link``.
'''

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<title>tquic bond</title>
<style>
:root{--bg:#0f1419;--panel:#182029;--line:#263241;--text:#e6edf3;--dim:#8b98a5;
--ok:#3fb950;--warn:#d29922;--bad:#f85149;--accent:#58a6ff;--radius:10px}
@media (prefers-color-scheme:light){:root{--bg:#f4f6f8;--panel:#fff;--line:#d8dee4;
--text:#1f2328;--dim:#59636e;--accent:#0969da}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--text);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5em 1.5em;align-items:baseline;padding:14px 18px;
border-bottom:1px solid var(--line);background:var(--panel)}
header h1{font-size:18px;margin:0;font-weight:650}
header .kv{color:var(--dim)} header .kv b{color:var(--text);font-weight:600}
#conn{margin-left:auto;font-size:12px;padding:2px 10px;border-radius:99px;background:var(--line)}
#conn.live{background:color-mix(in srgb,var(--ok) 25%,transparent);color:var(--ok)}
#conn.lost{background:color-mix(in srgb,var(--bad) 25%,transparent);color:var(--bad)}
main{padding:14px 18px;display:grid;gap:14px;
grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr))}
section{background:var(--panel);border:1px solid var(--line);border-radius:var(--radius);
padding:12px 14px;min-width:0}
section h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--dim);
margin:0 0 10px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
section h2 .seg{margin-left:auto;text-transform:none;letter-spacing:0}
.wide{grid-column:1/-1}
#chart{width:100%;height:220px;display:block}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--dim);margin-top:6px}
.sw{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
.seg{display:inline-flex;border:1px solid var(--line);border-radius:7px;overflow:hidden}
.seg button{background:none;border:0;color:var(--dim);padding:5px 10px;font:inherit;
font-size:12px;cursor:pointer;min-height:30px}
.seg button+button{border-left:1px solid var(--line)}
.seg button.on{background:var(--accent);color:#fff}
.seg button:disabled{opacity:.5;cursor:default}
#links{display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(min(100%,300px),1fr))}
.card{border:1px solid var(--line);border-radius:var(--radius);padding:10px 12px;
border-left:5px solid var(--c)}
.card .top{display:flex;align-items:center;gap:8px;flex-wrap:wrap}
.card .name{font-weight:650;font-size:15px}
.pill{font-size:11px;padding:1px 8px;border-radius:99px;text-transform:uppercase;
letter-spacing:.04em;background:var(--line)}
.pill.up{color:var(--ok);background:color-mix(in srgb,var(--ok) 18%,transparent)}
.pill.down,.pill.failed,.pill.disabled,.pill.abandoned{color:var(--bad);
background:color-mix(in srgb,var(--bad) 18%,transparent)}
.pill.validating,.pill.opening{color:var(--warn);
background:color-mix(in srgb,var(--warn) 18%,transparent)}
.pill.standby{color:var(--accent);background:color-mix(in srgb,var(--accent) 18%,transparent)}
.card .addr{color:var(--dim);font-size:12px;margin:2px 0 8px;overflow-wrap:anywhere}
.nums{display:grid;grid-template-columns:repeat(3,1fr);gap:6px 10px}
.nums div{min-width:0} .nums small{display:block;color:var(--dim);font-size:11px}
.nums span{font-variant-numeric:tabular-nums;font-weight:600;font-size:15px}
.bar{height:6px;background:var(--line);border-radius:3px;overflow:hidden;margin:8px 0 2px}
.bar i{display:block;height:100%;background:var(--c)}
.bar.cap i{background:var(--warn)}
.meta{font-size:12px;color:var(--dim);display:flex;justify-content:space-between;gap:8px}
.demoted{color:var(--warn);font-size:12px;margin-top:6px}
.actions{display:flex;gap:8px;margin-top:10px;flex-wrap:wrap;align-items:center}
.btn{background:none;border:1px solid var(--line);color:var(--text);border-radius:7px;
padding:5px 12px;font:inherit;font-size:12px;cursor:pointer;min-height:30px}
.btn:hover,.seg button:hover:not(.on){background:var(--line)}
canvas.spark{width:100%;height:34px;display:block;margin-top:8px}
table{width:100%;border-collapse:collapse;font-size:13px}
td,th{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line)}
th{color:var(--dim);font-weight:500}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#log{list-style:none;margin:0;padding:0;max-height:300px;overflow:auto;font-size:13px}
#log li{display:flex;gap:8px;padding:4px 0;border-bottom:1px solid var(--line)}
#log time{color:var(--dim);font-variant-numeric:tabular-nums;flex:none}
#log .k{flex:none;font-size:11px;padding:1px 6px;border-radius:4px;background:var(--line)}
#log .k.link-down,#log .k.demoted,#log .k.cap-reached,#log .k.error{color:var(--bad)}
#log .k.link-up,#log .k.restored{color:var(--ok)}
#log .k.api,#log .k.role{color:var(--accent)}
#toast{position:fixed;left:50%;bottom:18px;transform:translateX(-50%);background:var(--bad);
color:#fff;padding:8px 14px;border-radius:8px;display:none;max-width:90vw}
footer{color:var(--dim);font-size:12px;padding:0 18px 18px}
@media (max-width:520px){header{padding:10px 12px}main{padding:10px;gap:10px}
.nums span{font-size:14px}#chart{height:180px}}
</style>
</head>
<body>
<header>
  <h1 id="title">tquic</h1>
  <span class="kv">up <b id="uptime">-</b></span>
  <span class="kv">&darr; <b id="total-down">-</b></span>
  <span class="kv">&uarr; <b id="total-up">-</b></span>
  <span class="kv">links <b id="links-up">-</b></span>
  <span id="conn">connecting</span>
</header>
<main>
  <section class="wide">
    <h2>Throughput per link
      <span class="seg" id="dir"><button data-dir="down" class="on">received</button><button data-dir="up">sent</button></span>
    </h2>
    <canvas id="chart"></canvas>
    <div class="legend" id="legend"></div>
  </section>
  <section class="wide"><h2>Links</h2><div id="links"></div></section>
  <section id="tunnel-box" hidden><h2>Tunnel</h2><table id="tunnel"></table></section>
  <section id="endpoint-box" hidden><h2>Endpoint</h2><table id="endpoint"></table></section>
  <section id="clients-box" hidden><h2>Clients</h2><table id="clients"></table></section>
  <section><h2>Events</h2><ul id="log"></ul></section>
</main>
<footer>sample <span id="seq">-</span> &middot; <span id="version"></span> &middot;
JSON: <a href="status" style="color:inherit">/status</a>, <a href="links" style="color:inherit">/links</a>,
<a href="metrics" style="color:inherit">/metrics</a></footer>
<div id="toast"></div>
<script>
"use strict";
const COLORS=["#58a6ff","#3fb950","#d29922","#bc8cff","#f778ba","#39c5cf","#ff7b72","#a5d6ff"];
const $=id=>document.getElementById(id);
const state={hist:[],max:300,dir:"down",colors:{},rtt:{},seq:0,dirChosen:false};
function color(name){if(!(name in state.colors)){state.colors[name]=COLORS[Object.keys(state.colors).length%COLORS.length]}return state.colors[name]}
function rate(b){if(b==null)return"-";if(b>=1e9)return(b/1e9).toFixed(2)+" Gbit/s";if(b>=1e6)return(b/1e6).toFixed(2)+" Mbit/s";if(b>=1e3)return(b/1e3).toFixed(0)+" kbit/s";return b.toFixed(0)+" bit/s"}
function bytes(n){if(n==null)return"-";const u=["B","kB","MB","GB","TB"];let i=0;while(n>=1000&&i<u.length-1){n/=1000;i++}return(i?n.toFixed(n<10?2:1):n)+" "+u[i]}
function ms(s){return s==null?"-":(s*1000).toFixed(1)+" ms"}
function pct(x){return x==null?"-":(x*100).toFixed(x<0.01?2:1)+" %"}
function dur(s){s=Math.floor(s);const d=Math.floor(s/86400),h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60);return d?d+"d "+h+"h":h?h+"h "+m+"m":m?m+"m "+(s%60)+"s":s+"s"}
function el(tag,attrs,...kids){const e=document.createElement(tag);for(const k in attrs||{}){if(k==="class")e.className=attrs[k];else if(k.startsWith("data-")||k==="title"||k==="type")e.setAttribute(k,attrs[k]);else e[k]=attrs[k]}for(const c of kids)e.append(c);return e}
function toast(msg){const t=$("toast");t.textContent=msg;t.style.display="block";clearTimeout(toast.h);toast.h=setTimeout(()=>t.style.display="none",5000)}
async function call(method,path,body){
  const opts={method,headers:{"Content-Type":"application/json"},body:JSON.stringify(body===undefined?{}:body)};
  try{const r=await fetch(path,opts);const j=await r.json().catch(()=>({}));
    if(!r.ok){toast((j.error||r.statusText)+" ("+r.status+")");return null}return j}
  catch(e){toast("request failed: "+e);return null}
}
function field(label,name){return el("div",{},el("small",{},label),el("span",{"data-field":name,"data-raw":""},"-"))}
function isDown(st){return["down","failed","disabled","abandoned"].includes(st)}
function card(name){
  const c=color(name),e=el("div",{class:"card","data-link":name});e.style.setProperty("--c",c);
  const roles=el("span",{class:"seg","data-roles":name});
  for(const r of ["primary","backup","never"]){
    const b=el("button",{"data-role":r,type:"button"},r);
    b.onclick=()=>{if(r!==e._l.role){b.disabled=true;call("PUT","links/"+encodeURIComponent(name),{role:r}).then(()=>b.disabled=false)}};
    roles.append(b)}
  const toggle=el("button",{class:"btn",type:"button"});
  toggle.onclick=()=>call("POST","links/"+encodeURIComponent(name)+"/"+(isDown(e._l.state)?"up":"down"),undefined);
  e.append(el("div",{class:"top"},el("span",{class:"name"},name),
      el("span",{class:"pill","data-field":"state"}),el("span",{class:"pill","data-field":"role"})),
    el("div",{class:"addr"}),
    el("div",{class:"nums"},field("\u2193 rate","rate_down"),field("\u2191 rate","rate_up"),field("share","share"),
      field("RTT","srtt"),field("min RTT","min_rtt"),field("loss","loss"),
      field("received","bytes_received"),field("sent","bytes_sent"),field("cwnd","cwnd")),
    el("div",{class:"bar share"},el("i")),el("div",{class:"bar cap"},el("i")),
    el("div",{class:"meta"},el("span",{"data-field":"data_used"}),el("span",{class:"cap-text"})),
    el("div",{class:"demoted"}),el("canvas",{class:"spark"}),el("div",{class:"actions"},roles,toggle));
  return e}
const FMT={rate_down:rate,rate_up:rate,share:pct,srtt:ms,min_rtt:ms,loss:pct,bytes_received:bytes,bytes_sent:bytes,cwnd:bytes};
function update(e,l){
  e._l=l;const q=s=>e.querySelector(s);
  for(const k in FMT){const f=q('[data-field="'+k+'"]');f.dataset.raw=l[k]==null?"":String(l[k]);f.textContent=FMT[k](l[k])}
  const st=q('[data-field="state"]');st.className="pill "+l.state;st.dataset.raw=l.state;st.textContent=l.state;
  const ro=q('[data-field="role"]');ro.dataset.raw=l.role;ro.textContent=l.role+(l.weight!==1?" \u00d7"+l.weight:"");
  for(const b of e.querySelectorAll("[data-role]"))b.classList.toggle("on",b.dataset.role===l.role);
  const t=q(".actions .btn");t.dataset.action=isDown(l.state)?"up":"down";t.textContent=isDown(l.state)?"Bring up":"Take down";
  q(".addr").textContent=[l.interface,l.local&&("from "+l.local),l.remote&&("to "+l.remote),l.client&&("client "+l.client)].filter(Boolean).join(" \u00b7 ")||"\u00a0";
  q(".bar.share i").style.width=Math.round((l.share||0)*100)+"%";
  const cap=q(".bar.cap");cap.hidden=!l.data_cap;
  if(l.data_cap)cap.firstChild.style.width=(Math.min(1,l.data_used/l.data_cap.limit)*100).toFixed(1)+"%";
  const du=q('[data-field="data_used"]');du.dataset.raw=String(l.data_used);du.textContent=bytes(l.data_used)+" used";
  q(".cap-text").textContent=l.data_cap?"cap "+l.data_cap.text:"no cap";
  const why=l.demoted?"\u26a0 demoted: "+l.demoted:(l.reason&&isDown(l.state)?l.reason:"");
  const dm=q(".demoted");dm.hidden=!why;dm.textContent=why;
  }
function sparkline(cv,pts,c){
  const w=cv.clientWidth,h=cv.clientHeight,d=devicePixelRatio||1;if(!w)return;
  cv.width=w*d;cv.height=h*d;const g=cv.getContext("2d");g.scale(d,d);
  const v=pts.filter(x=>x!=null);if(v.length<2)return;
  const hi=Math.max(...v)*1.1,lo=Math.min(...v)*0.9,span=Math.max(hi-lo,1e-4);
  g.strokeStyle=c;g.lineWidth=1.5;g.beginPath();let first=true;
  const n=Math.max(pts.length,30);
  pts.forEach((x,i)=>{if(x==null){first=true;return}const X=(n-pts.length+i)/(n-1)*w,Y=h-2-(x-lo)/span*(h-4);first?g.moveTo(X,Y):g.lineTo(X,Y);first=false});
  g.stroke();g.fillStyle=getComputedStyle(document.body).color;g.font="10px system-ui";
  g.globalAlpha=.6;g.fillText("RTT "+(Math.max(...v)*1000).toFixed(0)+" ms max",2,10)}
function chart(){
  const cv=$("chart"),w=cv.clientWidth,h=cv.clientHeight,d=devicePixelRatio||1;
  cv.width=w*d;cv.height=h*d;const g=cv.getContext("2d");g.scale(d,d);
  const css=getComputedStyle(document.documentElement);
  const names=Object.keys(state.colors);const idx=state.dir==="up"?0:1;
  const H=state.hist;let top=1e5;
  for(const s of H){let t=0;for(const n of names){const r=s.links[n];if(r)t+=r[idx]}top=Math.max(top,t)}
  const step=niceStep(top/4);top=Math.ceil(top/step)*step;
  const L=62,R=8,T=8,B=18,pw=w-L-R,ph=h-T-B;
  g.font="11px system-ui";g.fillStyle=css.getPropertyValue("--dim");g.strokeStyle=css.getPropertyValue("--line");g.lineWidth=1;
  for(let y=0;y<=top+1e-9;y+=step){const Y=T+ph-y/top*ph;g.beginPath();g.moveTo(L,Y);g.lineTo(w-R,Y);g.stroke();g.fillText(axis(y),4,Y+4)}
  const span=Math.min(state.max,Math.max(H.length,60));
  g.fillText("-"+dur(Math.round(span*state.interval)),L,h-4);g.fillText("now",w-R-22,h-4);
  const x=i=>L+(span-H.length+i)/(span-1)*pw;
  const base=new Array(H.length).fill(0);
  for(const n of names){const c=color(n);const upper=H.map((s,i)=>base[i]+((s.links[n]||[0,0])[idx]||0));
    if(H.length>1){g.beginPath();H.forEach((s,i)=>{const X=x(i),Y=T+ph-upper[i]/top*ph;i?g.lineTo(X,Y):g.moveTo(X,Y)});
      for(let i=H.length-1;i>=0;i--)g.lineTo(x(i),T+ph-base[i]/top*ph);g.closePath();
      g.globalAlpha=.55;g.fillStyle=c;g.fill();g.globalAlpha=1;g.strokeStyle=c;g.lineWidth=1.5;
      g.beginPath();H.forEach((s,i)=>{const X=x(i),Y=T+ph-upper[i]/top*ph;i?g.lineTo(X,Y):g.moveTo(X,Y)});g.stroke()}
    upper.forEach((u,i)=>base[i]=u)}
  const lg=$("legend");lg.replaceChildren(...names.map(n=>el("span",{},el("i",{class:"sw",style:"background:"+color(n)}),n)))}
function axis(b){return b>=1e9?+(b/1e9).toFixed(2)+" Gbit/s":b>=1e6?+(b/1e6).toFixed(2)+" Mbit/s":b>=1e3?+(b/1e3).toFixed(0)+" kbit/s":b+" bit/s"}
function niceStep(x){if(x<=0)return 1;const p=Math.pow(10,Math.floor(Math.log10(x))),f=x/p;return(f<=1?1:f<=2?2:f<=5?5:10)*p}
function table(t,rows){t.replaceChildren(...rows.map(r=>el("tr",{},...r.map((c,i)=>i?el("td",{class:"n"},String(c)):el("th",{},String(c))))))}
function render(s){
  const st=s.status;state.seq=s.seq;$("seq").textContent="#"+s.seq;$("seq").dataset.seq=s.seq;
  $("title").textContent="tquic "+st.daemon;document.title="tquic "+st.daemon;
  $("version").textContent="tquic "+st.version;$("uptime").textContent=dur(st.uptime);
  $("total-down").textContent=rate(st.rate_down);$("total-up").textContent=rate(st.rate_up);
  $("links-up").textContent=st.links_up+"/"+st.links;
  if(!state.dirChosen&&(st.rate_up||st.rate_down)){state.dirChosen=true;setDir(st.rate_up>st.rate_down?"up":"down")}
  for(const l of s.links){color(l.name);const r=(state.rtt[l.name]=state.rtt[l.name]||[]);r.push(l.srtt);if(r.length>120)r.shift()}
  const pt={seq:s.seq,links:{}};for(const l of s.links)pt.links[l.name]=[l.rate_up,l.rate_down];
  state.hist.push(pt);if(state.hist.length>state.max)state.hist.shift();
  const box=$("links"),have={};for(const c of box.querySelectorAll(".card"))have[c.dataset.link]=c;
  const cards=s.links.map(l=>{const c=have[l.name]||card(l.name);update(c,l);return c});
  if(cards.length!==box.children.length||cards.some((c,i)=>box.children[i]!==c))box.replaceChildren(...cards);
  for(const c of cards)sparkline(c.querySelector("canvas.spark"),state.rtt[c.dataset.link]||[],color(c.dataset.link));
  if(!s.links.length)box.replaceChildren(el("p",{class:"addr"},"No links."));
  const tu=s.tunnel;$("tunnel-box").hidden=!tu;
  if(tu){const rows=[["packets in / out",tu.packets_in+" / "+tu.packets_out],["bytes in / out",bytes(tu.bytes_in)+" / "+bytes(tu.bytes_out)]];
    for(const k in tu.drops)rows.push(["dropped: "+k,tu.drops[k]]);
    rows.push(["reorder held",tu.reorder.held],["reorder late",tu.reorder.late],["added delay p50 / p99",ms(tu.reorder.delay_p50)+" / "+ms(tu.reorder.delay_p99)]);
    for(const k in tu.fec)rows.push(["FEC "+k,tu.fec[k]]);table($("tunnel"),rows)}
  const ep=st.endpoint;$("endpoint-box").hidden=!ep;  // a server's defences: Retry, drops, blocked peers
  if(ep){const rows=[["Retry",ep.retry_active?"on":"off"],["kernel filter",ep.kernel_filter?"on":"off"],["handshakes in progress",ep.handshakes_in_progress],["connections",ep.connections]];
    for(const k in ep.events)if(ep.events[k]||k==="peers_blocked"||k==="datagrams_dropped")rows.push([k.replace(/_/g," "),ep.events[k]]);
    table($("endpoint"),rows)}
  chart()}
const seen=new Set();
function logEvent(e){const key=e.seq+"@"+e.at;if(seen.has(key))return;seen.add(key);  // replayed on reconnect
  if(seen.size>1000)seen.delete(seen.values().next().value);
  const li=el("li",{"data-kind":e.kind},el("time",{},new Date(e.at*1000).toLocaleTimeString()),el("span",{class:"k "+e.kind},e.kind),el("span",{},e.message));
  const log=$("log");log.prepend(li);while(log.children.length>200)log.lastChild.remove()}
function setDir(d){state.dir=d;for(const b of $("dir").children)b.classList.toggle("on",b.dataset.dir===d);chart()}
for(const b of $("dir").children)b.onclick=()=>{state.dirChosen=true;setDir(b.dataset.dir)};
async function clients(){const j=await fetch("clients").then(r=>r.ok?r.json():null).catch(()=>null);
  if(!j)return;$("clients-box").hidden=!j.clients.length;
  table($("clients"),[["client","remote","paths","sent","received"],...j.clients.map(c=>[c.name,c.remote,c.paths,bytes(c.bytes_sent),bytes(c.bytes_received)])])}
async function start(){
  const h=await fetch("history").then(r=>r.ok?r.json():null).catch(()=>null);
  if(h){state.interval=h.interval;state.max=Math.max(60,Math.round(300/h.interval));
    state.hist=h.samples.slice(0,-1).map(s=>({seq:s.seq,links:s.links}));
    let up=0,down=0;for(const s of h.samples)for(const n in s.links){color(n);up+=s.links[n][0];down+=s.links[n][1]}
    if(up||down){state.dirChosen=true;setDir(up>down?"up":"down")}}
  else state.interval=1;
  const es=new EventSource("live");
  es.addEventListener("sample",m=>{$("conn").textContent="live";$("conn").className="live";render(JSON.parse(m.data))});
  es.addEventListener("log",m=>logEvent(JSON.parse(m.data)));
  es.onerror=()=>{$("conn").textContent="reconnecting";$("conn").className="lost"};
  clients();setInterval(clients,5000);
  addEventListener("resize",()=>{chart()})}
start();
</script>
</body>
</html>
"""
