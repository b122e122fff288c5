import { nonce } from "./nonce"; // first: before any style element is made
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { App as AntApp, ConfigProvider } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import { StrictMode, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { App } from "./App";
import "./i18n";
import "./styles.css";

const queries = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false, staleTime: Infinity } },
});

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <Localised>
      <AntApp>
        <QueryClientProvider client={queries}>
          <BrowserRouter>
            <App />
          </BrowserRouter>
        </QueryClientProvider>
      </AntApp>
    </Localised>
  </StrictMode>,
);

/** Ant Design's default colours, darkened where text on them falls short of WCAG AA's 4.5:1 (axe checks every page):
 * the primary blue under white button text, and secondary, placeholder and status texts on white or tinted fills. */
const CONTRAST = {
  colorPrimary: "#0958d9",
  colorLink: "#0958d9",
  colorSuccess: "#237804",
  colorWarning: "#ad4e00",
  colorError: "#cf1322",
  colorInfo: "#0958d9",
  colorTextSecondary: "rgba(0, 0, 0, 0.65)",
  colorTextTertiary: "rgba(0, 0, 0, 0.62)",
  colorTextDescription: "rgba(0, 0, 0, 0.62)",
  colorTextPlaceholder: "rgba(0, 0, 0, 0.58)",
  colorTextDisabled: "rgba(0, 0, 0, 0.56)",
  colorTextQuaternary: "rgba(0, 0, 0, 0.56)",
};

/** Ant Design's own words (date pickers, pagination, empty tables) follow the language switcher. */
function Localised({ children }: { children: ReactNode }) {
  const { i18n } = useTranslation();
  return (
    <ConfigProvider
      csp={{ nonce }}
      locale={i18n.language === "zh-CN" ? zhCN : enUS}
      theme={{ token: CONTRAST }}
    >
      {children}
    </ConfigProvider>
  );
}
